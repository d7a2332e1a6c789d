/*
 * The migration step of tests/libvirt/live-migrate.sh, through the public
 * API only: vsm_container_migrate() with VSM_MIGRATE_LIVE of a container
 * whose devices a running domain uses.
 *
 * usage: live-migrate-drv STATE_DIR CONTAINER DATASTORE MODE
 *   live    default settings
 *   sync    a 1 ms deadline with the SYNC rule: restarts synchronous
 *   abort   a 1 ms deadline with the ABORT rule: must fail -VSM_ETIMEDOUT
 *   cancel  the progress callback cancels at its first call in the copy
 *   crash   the progress callback kills the process (SIGKILL) there
 *   recover only opens a context (which recovers what a dead process
 *           left in the journal) and finds the container
 *   refuse  must fail (any error), printing the message
 * Prints "rc=N" and the stats; exits 0 when the outcome is the expected
 * one for MODE, 1 otherwise.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vsm/vsm.h>
#include <vsm/migrate.h>

static int cancel_at(uint64_t done, uint64_t total, void *payload)
{
	int *calls = payload;

	(void)total;
	/* Past two thirds (export, import): in the block copy. */
	return ++*calls > 0 && done * 3 > total * 2 ? 1 : 0;
}

static int crash_at(uint64_t done, uint64_t total, void *payload)
{
	(void)payload;
	if (done * 3 > total * 2) {
		fflush(stdout);
		raise(SIGKILL);
	}
	return 0;
}

static void on_log(int level, const char *message, void *payload)
{
	(void)payload;
	if (level >= VSM_LOG_WARN)
		printf("log: %s\n", message);
}

static void on_event(const vsm_event *ev, void *payload)
{
	(void)payload;
	if (vsm_event_type_of(ev) == VSM_EVENT_MIGRATION)
		printf("event: %s\n", vsm_event_detail(ev));
}

int main(int argc, char **argv)
{
	vsm_ctx_opts co = VSM_CTX_OPTS_INIT;
	vsm_migrate_opts o = VSM_MIGRATE_OPTS_INIT;
	vsm_migrate_stats st;
	vsm_container *c = NULL;
	vsm_ctx *ctx = NULL;
	const char *mode;
	int rc, calls = 0, ok;

	if (argc != 5) {
		fprintf(stderr, "usage: %s STATE CONTAINER DATASTORE live|sync|abort|cancel|crash|recover|refuse\n",
			argv[0]);
		return 2;
	}
	mode = argv[4];
	co.state_dir = argv[1];
	co.log_cb = on_log;
	if ((rc = vsm_ctx_open(&ctx, &co)) < 0) {
		fprintf(stderr, "open: %s\n", vsm_error_last()->message);
		return 1;
	}
	vsm_event_register(ctx, on_event, NULL, NULL);
	if ((rc = vsm_container_lookup(&c, ctx, NULL, argv[2])) < 0) {
		fprintf(stderr, "lookup: %s\n", vsm_error_last()->message);
		vsm_ctx_free(ctx);
		return 1;
	}
	if (!strcmp(mode, "recover")) {
		printf("found on %s\n", vsm_container_datastore(c));
		vsm_container_free(c);
		vsm_ctx_free(ctx);
		return 0;
	}
	o.flags = VSM_MIGRATE_LIVE;
	o.stats = &st;
	if (!strcmp(mode, "sync") || !strcmp(mode, "abort")) {
		o.deadline_ms = 1;
		o.on_no_converge = !strcmp(mode, "abort") ? VSM_MIGRATE_NO_CONVERGE_ABORT :
			VSM_MIGRATE_NO_CONVERGE_SYNC;
	} else if (!strcmp(mode, "cancel")) {
		o.progress = cancel_at;
		o.payload = &calls;
	} else if (!strcmp(mode, "crash")) {
		o.progress = crash_at;
	} else if (strcmp(mode, "live") != 0 && strcmp(mode, "refuse") != 0) {
		fprintf(stderr, "unknown mode '%s'\n", mode);
		return 2;
	}
	rc = vsm_container_migrate(c, argv[3], &o);
	printf("rc=%d%s%s\n", rc, rc < 0 ? " " : "", rc < 0 ? vsm_error_last()->message : "");
	if (rc == 0)
		printf("datastore=%s layers=%llu reused=%llu written=%llu passes=%llu "
		       "pause_us=%llu mirrored=%llu synchronous=%u\n", vsm_container_datastore(c),
		       (unsigned long long)st.layers, (unsigned long long)st.layers_reused,
		       (unsigned long long)st.bytes_written, (unsigned long long)st.passes,
		       (unsigned long long)st.pause_us, (unsigned long long)st.bytes_mirrored,
		       st.synchronous);
	if (!strcmp(mode, "abort"))
		ok = rc == -VSM_ETIMEDOUT;
	else if (!strcmp(mode, "cancel"))
		ok = rc == -VSM_ECANCELED;
	else if (!strcmp(mode, "refuse"))
		ok = rc < 0;
	else
		ok = rc == 0 && !strcmp(vsm_container_datastore(c), argv[3]) &&
		     (strcmp(mode, "sync") != 0 || st.synchronous == 1);
	vsm_container_free(c);
	vsm_ctx_free(ctx);
	return ok ? 0 : 1;
}
