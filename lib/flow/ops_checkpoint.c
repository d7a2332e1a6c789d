/* Built-in template ops (placeholder; filled in by the ops work). */
#include "flow.h"

const flow_op *const flow_checkpoint_ops[] = { NULL };
