/*
 * `vsmctl workflow validate|run|list|show|cancel`: workflow templates
 * (doc/workflows.md) through the public <vsm/workflow.h> API.
 */
#ifndef VSMCTL_WORKFLOW_H
#define VSMCTL_WORKFLOW_H

#include <vsm/context.h>

/* argv[0] is "workflow". @json: --json was given before the command.
 * Returns the process exit status: 0 on success (for run: the run is
 * done), 1 on error (for run: rolled back or cancelled), 2 on bad usage. */
int vsmctl_workflow_main(vsm_ctx *ctx, int argc, char **argv, int json);

#endif
