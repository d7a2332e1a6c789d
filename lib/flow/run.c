/* placeholder */
#include "flow.h"
typedef int flow_placeholder_run;
