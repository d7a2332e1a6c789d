/*
 * Group backups (doc/groups.md): a group checkpoint (one crash-consistent
 * cut of every member) backed up member by member with vsm_backup at that
 * checkpoint, and a small JSON manifest that ties the set together and
 * carries the group's recovery plan:
 *
 *   DIR/GROUP.POINT.group.json   the set: members, their files, the plan
 *   DIR/GROUP.POINT.MEMBER.bk    each member's backup file (doc/backup.md)
 *
 * An incremental set is taken since an earlier group backup point; the
 * member files are then incremental since the same point.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vsm/backup.h"
#include "group_int.h"
#include "gbackup.h"

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *plan_json(const vsm_group *g, size_t i)
{
	vsm_group_plan_entry e = VSM_GROUP_PLAN_ENTRY_INIT;
	json_object *o = json_object_new_object(), *after = json_object_new_array();
	size_t j;

	if (vsm_group_plan_get(g, i, &e) < 0) {
		json_object_put(after);
		json_object_put(o);
		return NULL;
	}
	json_object_object_add(o, "member", jstr(e.member));
	json_object_object_add(o, "priority", json_object_new_int64(e.priority));
	for (j = 0; j < e.n_after; j++)
		json_object_array_add(after, jstr(e.after[j]));
	json_object_object_add(o, "after", after);
	json_object_object_add(o, "mac", jstr(e.mac));
	json_object_object_add(o, "network", jstr(e.network));
	json_object_object_add(o, "ip", jstr(e.ip));
	json_object_object_add(o, "prefix", json_object_new_int(e.prefix));
	json_object_object_add(o, "gateway", jstr(e.gateway));
	json_object_object_add(o, "dns", jstr(e.dns));
	return o;
}

/* Write @json to DIR/NAME atomically: a temporary file, fsync, rename,
 * fsync of the directory. */
static int write_file(const char *dir, const char *name, const char *json)
{
	char tmp[4096], path[4096];
	size_t len = strlen(json), off = 0;
	int fd, dfd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return vsm_err(VSM_EIO, "group backup: '%s': %s", tmp, strerror(errno));
	while (off < len) {
		ssize_t w = write(fd, json + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = vsm_err(VSM_EIO, "group backup: '%s': %s", tmp, strerror(errno));
			break;
		}
		off += (size_t)w;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = vsm_err(VSM_EIO, "group backup: '%s': %s", tmp, strerror(errno));
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = vsm_err(VSM_EIO, "group backup: '%s': %s", path, strerror(errno));
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

static void point_name(char *buf, size_t size, const vsm_group *g)
{
	char base[64];
	time_t now = time(NULL);
	struct tm tm;
	size_t i;
	int k = 2;
	bool taken;

	gmtime_r(&now, &tm);
	strftime(base, sizeof(base), "backup-%Y%m%dT%H%M%SZ", &tm);
	snprintf(buf, size, "%s", base);
	do {
		taken = false;
		for (i = 0; i < vsm_group_checkpoint_count(g); i++)
			if (!strcmp(vsm_group_checkpoint_name(g, i), buf))
				taken = true;
		if (taken)
			snprintf(buf, size, "%s-%d", base, k++);
	} while (taken);
}

VSM_API int vsm_group_backup(vsm_group *g, const char *dir, const vsm_group_backup_opts *opts)
{
	vsm_group_backup_opts defaults = VSM_GROUP_BACKUP_OPTS_INIT;
	vsm_group_checkpoint_opts co = VSM_GROUP_CHECKPOINT_OPTS_INIT;
	char point[256], file[1024], path[4096], **made = NULL;
	json_object *m = NULL, *members, *plan;
	size_t n, i, n_made = 0;
	bool took = false;
	int rc;

	vsm__error_reset();
	if (!g || !dir)
		return vsm_err(VSM_EINVAL, "vsm_group_backup: NULL argument");
	if (!opts)
		opts = &defaults;
	if (opts->version == 0 || opts->version > VSM_GROUP_BACKUP_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_group_backup_opts version %u is not supported",
			       opts->version);
	if (opts->flags)
		return vsm_err(VSM_EINVAL, "vsm_group_backup: unknown flags 0x%x", opts->flags);
	if ((rc = vsm_group_refresh(g)) < 0)
		return rc;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return vsm_err(VSM_EIO, "group backup: '%s': %s", dir, strerror(errno));
	if (opts->checkpoint)
		snprintf(point, sizeof(point), "%s", opts->checkpoint);
	else
		point_name(point, sizeof(point), g);
	n = vsm_group_member_count(g);
	if (!(made = calloc(n + 1, sizeof(*made))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	co.timeout_ms = opts->timeout_ms;
	if ((rc = vsm_group_checkpoint_create(g, point, &co)) < 0)
		goto out;
	took = true;
	m = json_object_new_object();
	members = json_object_new_array();
	plan = json_object_new_array();
	json_object_object_add(m, "format", jstr(GB_FORMAT));
	json_object_object_add(m, "version", json_object_new_int(GB_VERSION));
	json_object_object_add(m, "group", jstr(vsm_group_name(g)));
	json_object_object_add(m, "group_uuid", jstr(vsm_group_uuid(g)));
	json_object_object_add(m, "point", jstr(point));
	json_object_object_add(m, "base", jstr(opts->incremental_from));
	json_object_object_add(m, "created", json_object_new_int64((int64_t)time(NULL)));
	for (i = 0; i < n; i++) {
		vsm_backup_opts bo = VSM_BACKUP_OPTS_INIT;
		vsm_container *c = NULL;
		json_object *e;

		snprintf(file, sizeof(file), "%s.%s.%s.bk", vsm_group_name(g), point,
			 vsm_group_member_name(g, i));
		snprintf(path, sizeof(path), "%s/%s", dir, file);
		bo.flags = VSM_BACKUP_AT_CHECKPOINT;
		bo.checkpoint = point;
		bo.incremental_from = opts->incremental_from;
		bo.progress = opts->progress;
		bo.payload = opts->payload;
		if ((rc = vsm_container_lookup_by_uuid(&c, g->ctx,
						       vsm_group_member_uuid(g, i))) < 0)
			goto out;
		rc = vsm_backup(c, path, &bo);
		vsm_container_free(c);
		if (rc < 0) {
			vsm__error_prefix("group '%s': member '%s'", vsm_group_name(g),
					  vsm_group_member_name(g, i));
			goto out;
		}
		if (!(made[n_made++] = strdup(path))) {
			rc = vsm_err(VSM_ENOMEM, "out of memory");
			goto out;
		}
		e = json_object_new_object();
		json_object_object_add(e, "name", jstr(vsm_group_member_name(g, i)));
		json_object_object_add(e, "uuid", jstr(vsm_group_member_uuid(g, i)));
		json_object_object_add(e, "file", jstr(file));
		json_object_array_add(members, e);
		json_object_array_add(plan, plan_json(g, i));
	}
	json_object_object_add(m, "members", members);
	json_object_object_add(m, "plan", plan);
	snprintf(file, sizeof(file), "%s.%s.group.json", vsm_group_name(g), point);
	rc = write_file(dir, file, json_object_to_json_string_ext(m, JSON_C_TO_STRING_PRETTY));
out:
	json_object_put(m);
	if (rc < 0) {
		vsm__saved_error saved;

		vsm__error_save(&saved);
		for (i = 0; i < n_made; i++)
			unlink(made[i]);
		if (took && vsm_group_checkpoint_delete(g, point, 0) < 0)
			vsm__log(g->ctx, VSM_LOG_WARN, "group '%s': removing checkpoint "
				 "'%s' after a failed backup: %s", vsm_group_name(g), point,
				 vsm_error_last()->message);
		vsm__error_restore(&saved);
	}
	for (i = 0; i < n_made; i++)
		free(made[i]);
	free(made);
	return rc;
}
