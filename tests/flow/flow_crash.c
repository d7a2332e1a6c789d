#include "flow_util.h"
TCase *flow_crash_tcase(void) { return tcase_create("crash"); }
