/*
 * What the built-in ops (ops_*.c) share: finding the container or group
 * a step names, building the small JSON objects of pre() and results,
 * and telling "already gone" apart from a failure in an undo.
 */
#ifndef VSM_FLOW_OPS_COMMON_H
#define VSM_FLOW_OPS_COMMON_H

#include "flow.h"

/* The argument rows every op on a container starts with. */
#define FLOW_ARG_CONTAINER { "container", FLOW_T_STRING, true }, \
			   { "datastore", FLOW_T_STRING, false }

/* The container args "container" names, on args "datastore" (absent: on
 * every datastore). Returns what vsm_container_lookup() returns. */
int flow_container_get(vsm_container **out, vsm_ctx *ctx, json_object *args);

/* The group args "group" names, on args "datastore" (absent: on every
 * datastore). Returns what vsm_group_lookup() returns. */
int flow_group_get(vsm_group **out, vsm_ctx *ctx, json_object *args);

/* An undo finds its object gone: that is the state it wants. Turns
 * -VSM_ENOTFOUND into 0 (forgetting the error it set); other codes pass. */
int flow_gone_ok(int rc);

/* A new empty object for pre() or a result; -VSM_ENOMEM with the error
 * set when there is no memory. */
int flow_obj_new(json_object **out);
/* Add a string (NULL: JSON null), a boolean, an integer to @o. */
int flow_obj_str(json_object *o, const char *key, const char *val);
int flow_obj_bool(json_object *o, const char *key, bool val);
int flow_obj_int(json_object *o, const char *key, int64_t val);
/* Add @v (NULL: out of memory) to @o, which takes it over. */
int flow_obj_add(json_object *o, const char *key, json_object *v);

/* Whether @pre has the boolean @field an undo cannot do without. A
 * missing one (no pre logged) is logged as a warning, and the undo leaves
 * things as they are rather than remove what may not be the step's.
 * @op NULL: only ask, log nothing. */
bool flow_pre_has(vsm_ctx *ctx, const flow_op *op, json_object *pre, const char *field);

/* Set the error for a failed allocation; returns -VSM_ENOMEM. */
int flow_nomem(void);

/* True when device @name of @c is deployed (has a locator). */
bool flow_device_deployed(const vsm_container *c, const char *name);

#endif /* VSM_FLOW_OPS_COMMON_H */
