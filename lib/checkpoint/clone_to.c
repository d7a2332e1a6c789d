/*
 * vsm_checkpoint_clone_to: a clone with settings, among them another
 * datastore. Across datastores the clone rides the bundle path, as an
 * offline migration does: the checkpoint is exported to a temporary
 * bundle in the state directory and imported on the target, where the
 * import relinks every layer the target holds with the same content ID
 * (bundle_import.c) and copies the rest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.h"
#include "ckpt.h"
#include "vsm/checkpoint.h"

VSM_API int vsm_checkpoint_clone_to(vsm_container **out, vsm_container *src,
				    const char *checkpoint, const char *name,
				    const vsm_clone_opts *opts)
{
	vsm_bundle_opts xo = VSM_BUNDLE_OPTS_INIT, io = VSM_BUNDLE_OPTS_INIT;
	vsm_bundle_stats st;
	char *tmp = NULL, id[VSM_UUID_STRLEN + 1];
	vsm_ctx *ctx;
	int rc;

	vsm__error_reset();
	if (!src || !checkpoint)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_clone_to: NULL argument");
	if (opts && (opts->version == 0 || opts->version > VSM_CLONE_OPTS_VERSION))
		return vsm_err(VSM_EVERSION, "vsm_clone_opts version %u is not supported",
			       opts->version);
	if (opts && opts->stats)
		memset(opts->stats, 0, sizeof(*opts->stats));
	if (!opts || !opts->datastore ||
	    !strcmp(opts->datastore, vsm_container_datastore(src)))
		return vsm_checkpoint_clone(out, src, checkpoint, name, opts ? opts->flags : 0);
	if (opts->flags & VSM_CLONE_FULL)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_clone_to: VSM_CLONE_FULL applies to a "
			       "clone on the same datastore; a clone on datastore '%s' copies what "
			       "the target lacks", opts->datastore);
	if (opts->flags)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_clone_to: unknown flags 0x%x",
			       opts->flags);
	if ((rc = vsm__name_check("container", name)) < 0)
		return rc;
	ctx = vsm__container_ctx(src);
	vsm__uuid_new(id);
	if (asprintf(&tmp, "%s/clone-%s.vsmb", ctx->state_dir, id) < 0)
		return vsm_err(VSM_ENOMEM, "out of memory");
	io.progress = opts->progress;
	io.payload = opts->payload;
	io.stats = &st;
	if ((rc = vsm_bundle_export(src, checkpoint, tmp, &xo)) == 0)
		rc = ck_import(out, ctx, tmp, opts->datastore, name, &io, NULL);
	if (rc < 0)
		vsm__error_prefix("container '%s': clone '%s' of checkpoint '%s' to datastore "
				  "'%s'", vsm_container_name(src), name, checkpoint,
				  opts->datastore);
	unlink(tmp);
	free(tmp);
	if (rc == 0) {
		if (opts->stats) {
			opts->stats->bytes_copied = st.bytes_written;
			opts->stats->layers_reused = st.layers_skipped;
			opts->stats->layers_copied = st.layers - st.layers_skipped;
		}
		vsm__log(ctx, VSM_LOG_INFO, "container '%s': clone '%s' of checkpoint '%s' on "
			 "datastore '%s': %llu layer(s) copied, %llu reused, %llu bytes",
			 vsm_container_name(src), name, checkpoint, opts->datastore,
			 (unsigned long long)st.layers - st.layers_skipped,
			 (unsigned long long)st.layers_skipped,
			 (unsigned long long)st.bytes_written);
	}
	return rc;
}
