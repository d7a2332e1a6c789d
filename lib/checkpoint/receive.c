/*
 * vsm_container_receive and its helpers: the receiving side of a
 * cross-site transfer (doc/cross-site.md). Sections arrive into a
 * directory of the state directory, one file each (a layer's named by
 * its digest, so a later transfer finds it whatever else changed); a
 * section the sender leaves out is made again from the layer with the
 * same content ID on the target datastore and checked against its
 * digest. When the end frame has come, the sections are put together
 * into a bundle, checked against the sender's digests, and imported:
 * the one journalled step that touches the datastore.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <json-c/json.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "codec.h"
#include "xfer.h"

typedef struct {
	bool layer, top, bottom;
	int format;
	uint64_t size;
	char cid[VSM_UUID_STRLEN + 1];
	char digest[B_DIGEST_HEX + 1];
	char file[80];   /* in the receive directory */
	bool cached;     /* complete in the directory */
	bool held;       /* left out by the sender: the datastore has it */
	bool resumed;    /* left out or ignored: an earlier transfer brought it */
} rsect;

typedef struct {
	vsm_ctx *ctx;
	const char *datastore;
	char uuid[VSM_UUID_STRLEN + 1];
	char *name;
	char *text;       /* the bundle manifest */
	int64_t ctime;
	bool thick;
	char *dir;
	rsect *s;
	size_t n, nl;
	unsigned int pass, passes; /* of an iterative send; 0: one pass */
} recv_t;

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static void path_of(const recv_t *t, const char *file, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", t->dir, file);
}

static bool exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

/* The stream's first frame: who is coming, and its bundle manifest. */
static int parse_manifest(recv_t *t, const uint8_t *buf, size_t n, const char *name)
{
	json_object *j = NULL, *m = NULL, *jl, *jb, *v;
	char *txt;
	size_t i, nb;
	int rc = 0;

	if (!(txt = malloc(n + 1)))
		return vsm_err(VSM_ENOMEM, "out of memory");
	memcpy(txt, buf, n);
	txt[n] = '\0';
	j = json_tokener_parse(txt);
	free(txt);
	if (!j || !jstr(j, "format") || strcmp(jstr(j, "format"), "libvsm-stream") ||
	    !jstr(j, "uuid") || !vsm__uuid_valid(jstr(j, "uuid")) || !jstr(j, "name") ||
	    !jstr(j, "manifest")) {
		rc = vsm_err(VSM_ECORRUPT, "stream: its first frame does not describe a container");
		goto out;
	}
	snprintf(t->uuid, sizeof(t->uuid), "%s", jstr(j, "uuid"));
	t->ctime = json_object_object_get_ex(j, "ctime", &v) ? json_object_get_int64(v) : 0;
	t->thick = json_object_object_get_ex(j, "thick", &v) && json_object_get_boolean(v);
	t->pass = json_object_object_get_ex(j, "pass", &v) ? (unsigned int)json_object_get_uint64(v) : 0;
	t->passes = json_object_object_get_ex(j, "passes", &v) ?
			    (unsigned int)json_object_get_uint64(v) : 0;
	if (t->passes > XS_PASSES_MAX || t->pass > t->passes || (t->passes && !t->pass)) {
		rc = vsm_err(VSM_ECORRUPT, "stream: pass %u of %u is not valid", t->pass, t->passes);
		goto out;
	}
	if (!(t->name = vsm__strdup(name ? name : jstr(j, "name"))) ||
	    !(t->text = vsm__strdup(jstr(j, "manifest")))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	if (!(m = json_tokener_parse(t->text)) || !json_object_object_get_ex(m, "layers", &jl) ||
	    !json_object_is_type(jl, json_type_array) || !json_object_object_get_ex(m, "blobs", &jb) ||
	    !json_object_is_type(jb, json_type_array)) {
		rc = vsm_err(VSM_ECORRUPT, "stream: the bundle manifest is not valid");
		goto out;
	}
	t->nl = json_object_array_length(jl);
	nb = json_object_array_length(jb);
	t->n = t->nl + nb;
	if (!(t->s = calloc(t->n ? t->n : 1, sizeof(*t->s)))) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < t->n; i++) {
		rsect *s = &t->s[i];

		if (i >= t->nl) {
			snprintf(s->file, sizeof(s->file), "B-%zu", i - t->nl);
			continue;
		}
		{
			json_object *e = json_object_array_get_idx(jl, i), *b;
			const char *cid = jstr(e, "cid"), *dg = jstr(e, "digest");
			const char *fmt = jstr(e, "format");

			s->layer = true;
			s->top = json_object_object_get_ex(e, "top", &b) && json_object_get_boolean(b);
			s->bottom = !json_object_object_get_ex(e, "backing", &b) || !b ||
				    json_object_is_type(b, json_type_null);
			if (!fmt || vsm_format_parse(&s->format, fmt) < 0)
				s->format = -1;
			s->size = json_object_object_get_ex(e, "size", &b) ?
					  json_object_get_uint64(b) : 0;
			snprintf(s->cid, sizeof(s->cid), "%s", cid ? cid : "");
			snprintf(s->digest, sizeof(s->digest), "%s", dg ? dg : "");
			/* Named by digest: the same bytes whatever bundle they
			 * came in. A layer without a digest (never from this
			 * sender) only by its place. */
			if (strlen(s->digest) == B_DIGEST_HEX)
				snprintf(s->file, sizeof(s->file), "L-%s", s->digest);
			else
				snprintf(s->file, sizeof(s->file), "S-%zu", i);
		}
	}
out:
	json_object_put(m);
	json_object_put(j);
	return rc;
}

/* The receive directory of this container, for this manifest: sections
 * kept by place (blobs) belong to one manifest and go when it changes. */
static int open_dir(recv_t *t, bool keep_blobs)
{
	char p[4096], want[2 * XS_SHA + 2], have[2 * XS_SHA + 2] = "";
	uint8_t sha[XS_SHA];
	struct sha256_ctx d;
	FILE *f;

	if (mkdir(t->dir, 0700) < 0 && errno != EEXIST)
		return vsm_err(VSM_EIO, "'%s': %s", t->dir, strerror(errno));
	sha256_init(&d);
	sha256_update(&d, strlen(t->text), (const uint8_t *)t->text);
	sha256_digest(&d, XS_SHA, sha);
	xs_hex(sha, want);
	strcat(want, "\n");
	path_of(t, "manifest", p, sizeof(p));
	if ((f = fopen(p, "re"))) {
		if (!fgets(have, sizeof(have), f))
			have[0] = '\0';
		fclose(f);
	}
	if (strcmp(want, have)) {
		DIR *dd = opendir(t->dir);
		struct dirent *e;

		while (dd && (e = readdir(dd))) {
			char q[4096];

			if (e->d_name[0] == 'L' && e->d_name[1] == '-' && !strchr(e->d_name, '.'))
				continue;
			if (keep_blobs && e->d_name[0] == 'B' && e->d_name[1] == '-' &&
			    !strchr(e->d_name, '.'))
				continue;
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
			    !strcmp(e->d_name, "lock"))
				continue;
			snprintf(q, sizeof(q), "%s/%s", t->dir, e->d_name);
			unlink(q);
		}
		if (dd)
			closedir(dd);
		if (!(f = fopen(p, "we")) || fputs(want, f) < 0 || fclose(f) != 0)
			return vsm_err(VSM_EIO, "'%s': %s", p, strerror(errno));
	}
	return 0;
}

static int fsync_close(int fd, const char *p)
{
	int rc = 0;

	if (fsync(fd) < 0)
		rc = vsm_err(VSM_EIO, "'%s': %s", p, strerror(errno));
	close(fd);
	return rc;
}

/* Section @i made again from the layer with its content ID on the
 * datastore: the same records, so the same digest, or it is not the
 * same layer. */
static int remake(recv_t *t, size_t i)
{
	rsect *s = &t->s[i];
	vsm_dstore *ds;
	char p[4096], part[4200];
	size_t r, j;
	int rc = -VSM_ENOTFOUND;

	if (!s->layer || s->top || !s->cid[0] || strlen(s->digest) != B_DIGEST_HEX ||
	    s->format < 0)
		return -VSM_ENOTFOUND;
	path_of(t, s->file, p, sizeof(p));
	snprintf(part, sizeof(part), "%s.part", p);
	vsm__ctx_lock(t->ctx);
	if ((rc = vsm__ds_get(&ds, t->ctx, t->datastore)) < 0 ||
	    (rc = vsm__ds_refresh(t->ctx, ds)) < 0)
		goto out;
	rc = -VSM_ENOTFOUND;
	for (r = 0; r < ds->n_recs && rc == -VSM_ENOTFOUND; r++) {
		const vsm_record *rec = ds->recs[r];

		if (rec->destroying || rec->migration)
			continue;
		for (j = 0; j < rec->n_layers && rc == -VSM_ENOTFOUND; j++) {
			const vsm_rec_frozen *e = &rec->layers[j];
			xlayer xl = {0};
			bfile f = {0};

			if (!e->cid || strcmp(e->cid, s->cid) || e->format != s->format)
				continue;
			xl.key = e->key;
			xl.format = e->format;
			xl.backing = s->bottom ? -1 : 0;
			xl.cid = s->cid;
			xl.size = s->size;
			memcpy(xl.digest, s->digest, sizeof(xl.digest));
			f.path = part;
			ck_sum_init(&f.sum);
			if ((f.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
				rc = vsm_err(VSM_EIO, "'%s': %s", part, strerror(errno));
				break;
			}
			rc = ck_export_layer(&f, ds, &xl, false);
			/* The section without the bundle's running checksum. */
			if (rc == 0 && ftruncate(f.fd, (off_t)(f.pos - 8)) < 0)
				rc = vsm_err(VSM_EIO, "'%s': %s", part, strerror(errno));
			if (rc == 0)
				rc = fsync_close(f.fd, part);
			else
				close(f.fd);
			if (rc == 0 && rename(part, p) < 0)
				rc = vsm_err(VSM_EIO, "'%s': %s", p, strerror(errno));
			if (rc < 0) {
				unlink(part);
				vsm__error_reset();
				rc = -VSM_ENOTFOUND; /* not the same bytes: try another */
			}
		}
	}
out:
	vsm__ctx_unlock(t->ctx);
	if (rc == 0)
		s->cached = s->held = true;
	return rc;
}

/* Whether the datastore holds a layer with section @i's content ID (a
 * section made again from it earlier counts as held, not resumed). */
static bool held_here(recv_t *t, size_t i)
{
	const rsect *s = &t->s[i];
	vsm_dstore *ds;
	bool yes = false;
	size_t r, j;

	if (!s->layer || s->top || !s->cid[0])
		return false;
	vsm__ctx_lock(t->ctx);
	if (vsm__ds_get(&ds, t->ctx, t->datastore) == 0)
		for (r = 0; r < ds->n_recs && !yes; r++)
			for (j = 0; j < ds->recs[r]->n_layers && !yes; j++)
				yes = !ds->recs[r]->destroying && ds->recs[r]->layers[j].cid &&
				      !strcmp(ds->recs[r]->layers[j].cid, s->cid);
	vsm__ctx_unlock(t->ctx);
	vsm__error_reset();
	return yes;
}

/* Put the sections together as the bundle the sender has, checking each
 * against the SHA-256 the end frame gave, and the whole. */
static int assemble(recv_t *t, const uint8_t *end, size_t n, const char *path)
{
	uint8_t hdr[B_HDR], tail[8], trailer[24], sha[XS_SHA], *buf = NULL;
	struct sha256_ctx whole;
	bfile f = {0};
	ck_sum ms;
	size_t i;
	int rc = 0;

	if (n != 4 + t->n * XS_SHA + XS_SHA || vsm__get_le32(end) != t->n)
		return vsm_err(VSM_ECORRUPT, "stream: its end frame does not match its manifest");
	if (!(buf = malloc(B_CHUNK)))
		return vsm_err(VSM_ENOMEM, "out of memory");
	unlink(path);
	f.path = path;
	ck_sum_init(&f.sum);
	if ((f.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		free(buf);
		return vsm_err(VSM_EIO, "'%s': %s", path, strerror(errno));
	}
	ck_sum_init(&ms);
	ck_sum_add(&ms, t->text, strlen(t->text));
	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, B_MAGIC, 8);
	vsm__put_le32(hdr + 8, B_VERSION);
	vsm__put_le32(hdr + 12, B_HDR);
	vsm__put_le64(hdr + 16, strlen(t->text));
	vsm__put_le64(hdr + 24, ck_sum_value(&ms));
	vsm__put_le32(hdr + 56, vsm__crc32(hdr, 56));
	if ((rc = ck_bundle_write(&f, hdr, sizeof(hdr))) < 0 ||
	    (rc = ck_bundle_write(&f, t->text, strlen(t->text))) < 0)
		goto out;
	sha256_init(&whole);
	sha256_update(&whole, strlen(t->text), (const uint8_t *)t->text);
	for (i = 0; i < t->n; i++) {
		char p[4096];
		struct sha256_ctx d;
		int in;
		ssize_t r;

		path_of(t, t->s[i].file, p, sizeof(p));
		if ((in = open(p, O_RDONLY | O_CLOEXEC)) < 0) {
			rc = vsm_err(VSM_ECORRUPT, "stream: section %zu never arrived", i);
			goto out;
		}
		sha256_init(&d);
		while ((r = read(in, buf, B_CHUNK)) > 0) {
			sha256_update(&d, (size_t)r, buf);
			if ((rc = ck_bundle_write(&f, buf, (size_t)r)) < 0)
				break;
		}
		if (r < 0 && rc == 0)
			rc = vsm_err(VSM_EIO, "'%s': %s", p, strerror(errno));
		close(in);
		if (rc < 0)
			goto out;
		sha256_digest(&d, XS_SHA, sha);
		if (memcmp(sha, end + 4 + i * XS_SHA, XS_SHA)) {
			/* Not what the sender has: drop it, so that the next
			 * transfer brings it again. */
			unlink(p);
			rc = vsm_err(VSM_ECORRUPT, "stream: section %zu (%s) differs from the "
				     "sender's; it was dropped: send again", i,
				     t->s[i].layer ? (t->s[i].held ? "a layer made again from this "
							  "datastore" : "a layer") : "a blob");
			goto out;
		}
		sha256_update(&whole, XS_SHA, sha);
		if (t->s[i].layer) {
			vsm__put_le64(tail, ck_sum_value(&f.sum));
			if ((rc = ck_bundle_write(&f, tail, sizeof(tail))) < 0)
				goto out;
		}
	}
	sha256_digest(&whole, XS_SHA, sha);
	if (memcmp(sha, end + 4 + t->n * XS_SHA, XS_SHA)) {
		rc = vsm_err(VSM_ECORRUPT, "stream: the container fails its digest");
		goto out;
	}
	memcpy(trailer, B_END, 8);
	vsm__put_le64(trailer + 8, f.pos);
	vsm__put_le64(trailer + 16, ck_sum_value(&f.sum));
	if ((rc = ck_bundle_write(&f, trailer, sizeof(trailer))) < 0)
		goto out;
	if (fsync(f.fd) < 0)
		rc = vsm_err(VSM_EIO, "'%s': %s", path, strerror(errno));
out:
	close(f.fd);
	free(buf);
	if (rc < 0)
		unlink(path);
	return rc;
}

/* Refusals that need no data: the datastore, the name and the UUID. */
static int check_target(recv_t *t)
{
	vsm_dstore *ds;
	int rc;

	vsm__ctx_lock(t->ctx);
	if ((rc = vsm__ds_get(&ds, t->ctx, t->datastore)) < 0 ||
	    (rc = vsm__ds_refresh(t->ctx, ds)) < 0)
		goto out;
	if (vsm__ds_find(ds, t->name, NULL))
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': container '%s' already exists",
			     t->datastore, t->name);
	else if (vsm__ds_find(ds, NULL, t->uuid))
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': container %s is already there",
			     t->datastore, t->uuid);
out:
	vsm__ctx_unlock(t->ctx);
	return rc;
}

static int answer(xs_chan *ch, uint32_t type, json_object *j)
{
	const char *s = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);

	return ch->fd >= 0 ? xs_frame_put(ch, type, s, strlen(s)) : 0;
}

static int answer_error(xs_chan *ch, uint32_t type)
{
	const vsm_error *e = vsm_error_last();
	json_object *j = json_object_new_object();
	int rc;

	json_object_object_add(j, "error", json_object_new_string(e && e->message ? e->message :
								   "failed"));
	rc = answer(ch, type, j);
	json_object_put(j);
	return rc;
}

/* The frames of the sections and the end frame (into @end). */
static int take_sections(recv_t *t, xs_chan *in, uint8_t *buf, uint8_t *end, size_t *end_n)
{
	char p[4096], part[4200];
	struct sha256_ctx d;
	int fd = -1, rc = 0;
	long cur = -1;
	bool discard = false;
	uint64_t got = 0;

	for (;;) {
		uint32_t type, x;
		size_t n;

		if ((rc = xs_frame_get(in, &type, buf, &n)) < 0)
			break;
		if ((rc = xs_tick(in)) < 0)
			break;
		x = n >= 4 ? vsm__get_le32(buf) : UINT32_MAX;
		if (type == XF_DATA) {
			if (cur < 0) {
				rc = vsm_err(VSM_ECORRUPT, "stream: data outside a section");
				break;
			}
			sha256_update(&d, n, buf);
			got += n;
			if (!discard) {
				const uint8_t *q = buf;
				size_t left = n;

				while (left) {
					ssize_t w = write(fd, q, left);

					if (w < 0 && errno == EINTR)
						continue;
					if (w <= 0) {
						rc = vsm_err(VSM_EIO, "'%s': %s", part, strerror(errno));
						break;
					}
					q += w;
					left -= (size_t)w;
				}
				if (rc < 0)
					break;
			}
			continue;
		}
		if (type == XF_ABORT) {
			buf[n < 200 ? n : 200] = '\0';
			rc = vsm_err(VSM_ECANCELED, "the sender gave up: %s", (char *)buf);
			break;
		}
		if (type == XF_END) {
			if (cur >= 0) {
				rc = vsm_err(VSM_ECORRUPT, "stream: it ends inside section %ld", cur);
				break;
			}
			memcpy(end, buf, n);
			*end_n = n;
			break;
		}
		if ((type != XF_BEGIN && type != XF_SECTION && type != XF_SKIP) || n < 4 ||
		    x >= t->n || (type == XF_SECTION) != (cur >= 0) ||
		    (type == XF_SECTION && (n != 4 + 8 + XS_SHA || x != (uint32_t)cur))) {
			rc = vsm_err(VSM_ECORRUPT, "stream: frame %llu is out of order",
				     (unsigned long long)in->frames);
			break;
		}
		path_of(t, t->s[x].file, p, sizeof(p));
		snprintf(part, sizeof(part), "%s.part", p);
		if (type == XF_BEGIN) {
			cur = (long)x;
			got = 0;
			sha256_init(&d);
			/* Already here from an earlier transfer: read, not
			 * written again. */
			discard = t->s[x].cached;
			if (!discard &&
			    (fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
				rc = vsm_err(VSM_EIO, "'%s': %s", part, strerror(errno));
				break;
			}
			continue;
		}
		if (type == XF_SKIP) {
			if (t->s[x].cached) {
				if (!t->s[x].resumed)
					t->s[x].held = true;
				continue;
			}
			if ((rc = remake(t, x)) < 0) {
				vsm__error_reset();
				rc = vsm_err(VSM_ENOTFOUND, "stream: the sender left out layer %u "
					     "(content ID %s), and datastore '%s' holds no copy that "
					     "reads the same; send again without that have list",
					     x, t->s[x].cid[0] ? t->s[x].cid : "none", t->datastore);
				break;
			}
			continue;
		}
		/* XF_SECTION: the section is complete. */
		{
			uint8_t sha[XS_SHA];

			sha256_digest(&d, XS_SHA, sha);
			if (vsm__get_le64(buf + 4) != got || memcmp(sha, buf + 12, XS_SHA)) {
				rc = vsm_err(VSM_ECORRUPT, "stream: section %u fails its digest", x);
				break;
			}
			if (discard) {
				t->s[x].resumed = true;
			} else {
				rc = fsync_close(fd, part);
				fd = -1;
				if (rc == 0 && rename(part, p) < 0)
					rc = vsm_err(VSM_EIO, "'%s': %s", p, strerror(errno));
				if (rc < 0)
					break;
				t->s[x].cached = true;
			}
			cur = -1;
			discard = false;
		}
	}
	if (fd >= 0) {
		close(fd);
		unlink(part); /* an unfinished section is not kept */
	}
	return rc;
}

static void free_recv(recv_t *t)
{
	free(t->name);
	free(t->text);
	free(t->dir);
	free(t->s);
}

VSM_API int vsm_container_receive(vsm_container **out, vsm_ctx *ctx, int in_fd, int out_fd,
				  const char *datastore, const vsm_receive_opts *opts)
{
	vsm_receive_opts defaults = VSM_RECEIVE_OPTS_INIT;
	vsm_container *nc = NULL;
	vsm_bundle_opts bo = VSM_BUNDLE_OPTS_INIT;
	vsm_bundle_stats bs = {0};
	xs_chan in = {0}, ans = {0};
	recv_t t = {0};
	uint8_t *buf = NULL, *end = NULL;
	size_t n = 0, end_n = 0, i;
	uint64_t held = 0, resumed = 0;
	uint32_t type, flags;
	char *bpath = NULL, ev[300];
	bool started = false;
	json_object *j;
	int rc, lockfd = -1;

	vsm__error_reset();
	if (out)
		*out = NULL;
	if (!ctx || in_fd < 0 || !datastore)
		return vsm_err(VSM_EINVAL, "vsm_container_receive: NULL argument or no stream");
	if (!opts)
		opts = &defaults;
	if (opts->version == 0 || opts->version > VSM_TRANSFER_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_receive_opts version %u is not supported",
			       opts->version);
	if (opts->flags)
		return vsm_err(VSM_EINVAL, "vsm_container_receive: unknown flags 0x%x", opts->flags);
	if (opts->name && !opts->name[0])
		return vsm_err(VSM_EINVAL, "vsm_container_receive: empty name");
	t.ctx = ctx;
	t.datastore = datastore;
	in.fd = in_fd;
	in.what = "stream";
	in.progress = opts->progress;
	in.payload = opts->payload;
	ans.fd = out_fd;
	ans.what = "answer channel";
	if (!(buf = malloc(XS_PAYLOAD_MAX + 1)) || !(end = malloc(XS_PAYLOAD_MAX))) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = xs_header_get(&in, &flags)) < 0 || (rc = xs_frame_get(&in, &type, buf, &n)) < 0)
		goto out;
	/* A one-way sender reads no answers (and @out_fd may be a terminal). */
	if (!(flags & 1)) {
		ans.fd = -1;
	} else if (out_fd < 0) {
		rc = vsm_err(VSM_EINVAL, "stream: the sender expects answers, and this receive has "
			     "no channel back");
		goto out;
	}
	if (type != XF_MANIFEST) {
		rc = vsm_err(VSM_ECORRUPT, "stream: it does not start with a manifest");
		goto out;
	}
	if ((rc = parse_manifest(&t, buf, n, opts->name)) < 0)
		goto out;
	{
		json_object *mj = json_tokener_parse((char *)(buf[n] = '\0', buf)), *v;

		in.total = mj && json_object_object_get_ex(mj, "bytes", &v) ?
				   json_object_get_uint64(v) : 0;
		json_object_put(mj);
	}
	started = true;
	xs_event(ctx, datastore, t.name, "start");
	if ((rc = check_target(&t)) < 0) {
		answer_error(&ans, XF_HAVE);
		goto out;
	}
	if ((rc = xs_recv_dir(ctx, t.uuid, &t.dir)) < 0 ||
	    (mkdir(t.dir, 0700) < 0 && errno != EEXIST &&
	     (rc = vsm_err(VSM_EIO, "'%s': %s", t.dir, strerror(errno))) < 0)) {
		answer_error(&ans, XF_HAVE);
		goto out;
	}
	/* One receive of a container at a time: two would write the same
	 * sections. The lock goes with the process. */
	{
		char lp[4096];

		path_of(&t, "lock", lp, sizeof(lp));
		if ((lockfd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
		    flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
			rc = vsm_err(lockfd < 0 ? VSM_EIO : VSM_EBUSY, "container %s: another "
				     "receive of it is running in state directory '%s'", t.uuid,
				     ctx->state_dir);
			answer_error(&ans, XF_HAVE);
			goto out;
		}
	}
next_pass:
	/* The blobs of the pass before, in this same transfer, are what
	 * the sender compares with: a stale one fails the end frame's
	 * check and is dropped. */
	if ((rc = open_dir(&t, t.pass > 1)) < 0 || (!bpath && asprintf(&bpath, "%s/bundle.vsmb", t.dir) < 0)) {
		rc = rc < 0 ? rc : vsm_err(VSM_ENOMEM, "out of memory");
		answer_error(&ans, XF_HAVE);
		goto out;
	}
	/* What is here already: complete sections of an earlier transfer,
	 * and (two-way) layers the datastore holds. */
	j = json_object_new_object();
	{
		json_object *skip = json_object_new_array(), *res = json_object_new_array();

		for (i = 0; i < t.n; i++) {
			char p[4096];

			path_of(&t, t.s[i].file, p, sizeof(p));
			if (exists(p))
				t.s[i].cached = true;
			if (ans.fd < 0) /* one-way: the frames will say */
				continue;
			if (t.s[i].cached && held_here(&t, i)) {
				t.s[i].held = true;
				json_object_array_add(skip, json_object_new_int64((int64_t)i));
			} else if (t.s[i].cached) {
				t.s[i].resumed = true;
				json_object_array_add(res, json_object_new_int64((int64_t)i));
			} else if (remake(&t, i) == 0) {
				json_object_array_add(skip, json_object_new_int64((int64_t)i));
			}
			vsm__error_reset();
		}
		json_object_object_add(j, "skip", skip);
		json_object_object_add(j, "resumed", res);
	}
	rc = answer(&ans, XF_HAVE, j);
	json_object_put(j);
	if (rc < 0)
		goto out;
	if ((rc = take_sections(&t, &in, buf, end, &end_n)) < 0)
		goto out;
	snprintf(ev, sizeof(ev), "pass %u %llu", t.pass ? t.pass : 1, (unsigned long long)in.bytes);
	xs_event(ctx, datastore, t.name, ev);
	if (t.pass < t.passes) {
		/* A cut of an iterative send: its layers stay in the
		 * directory (by digest) for the passes that follow; the
		 * next manifest is the next cut's. */
		char want[VSM_UUID_STRLEN + 1];
		unsigned int was = t.pass, of = t.passes;

		memcpy(want, t.uuid, sizeof(want));
		free(t.name);
		free(t.text);
		free(t.s);
		t.name = t.text = NULL;
		t.s = NULL;
		if ((rc = xs_frame_get(&in, &type, buf, &n)) < 0)
			goto out;
		if (type != XF_MANIFEST) {
			rc = vsm_err(VSM_ECORRUPT, "stream: pass %u is not followed by a manifest",
				     was);
			goto out;
		}
		if ((rc = parse_manifest(&t, buf, n, opts->name)) < 0)
			goto out;
		if (strcmp(want, t.uuid) || t.passes != of || t.pass != was + 1) {
			rc = vsm_err(VSM_ECORRUPT, "stream: pass %u does not follow pass %u of "
				     "container %s", t.pass, was, want);
			goto out;
		}
		{
			json_object *mj = json_tokener_parse((char *)(buf[n] = '\0', buf)), *v;

			in.total = in.bytes + (mj && json_object_object_get_ex(mj, "bytes", &v) ?
					       json_object_get_uint64(v) : 0);
			json_object_put(mj);
		}
		goto next_pass;
	}
	if ((rc = assemble(&t, end, end_n, bpath)) < 0) {
		answer_error(&ans, XF_DONE);
		goto out;
	}
	bo.stats = &bs;
	{
		ck_import_how how = { NULL, t.uuid, 0, t.ctime, t.thick };

		rc = ck_import(&nc, ctx, bpath, datastore, t.name, &bo, &how);
	}
	unlink(bpath);
	/* After the commit point (the import): the temporary checkpoints
	 * of the passes go, merged, so the container reads the same; one
	 * that cannot go is logged, not an error. */
	if (rc == 0 && t.passes > 1) {
		unsigned int k;
		char cp[32];

		for (k = t.passes - 1; k >= 1; k--) {
			snprintf(cp, sizeof(cp), XS_CUT "%u", k);
			if (vsm_checkpoint_delete(nc, cp, 0) < 0)
				vsm__log(ctx, VSM_LOG_WARN, "container '%s': temporary checkpoint "
					 "'%s' stays: %s", t.name, cp, vsm_error_last() ?
					 vsm_error_last()->message : "?");
		}
		vsm__error_reset();
		vsm_container_refresh(nc);
		vsm__error_reset();
	}
	if (out)
		*out = nc;
	else
		vsm_container_free(nc);
	nc = NULL;
	if (rc < 0) {
		/* Damage the checks above missed is not kept for a resume. */
		if (rc == -VSM_ECORRUPT)
			xs_rmdir(t.dir);
		answer_error(&ans, XF_DONE);
		goto out;
	}
	xs_rmdir(t.dir);
	j = json_object_new_object();
	json_object_object_add(j, "uuid", json_object_new_string(t.uuid));
	json_object_object_add(j, "name", json_object_new_string(t.name));
	json_object_object_add(j, "datastore", json_object_new_string(datastore));
	if (answer(&ans, XF_DONE, j) < 0) {
		/* The container is here; only the sender does not know. */
		vsm__log(ctx, VSM_LOG_WARN, "container '%s' received, but the sender could not be "
			 "told: %s", t.name, vsm_error_last() ? vsm_error_last()->message : "?");
		vsm__error_reset();
	}
	json_object_put(j);
	rc = 0;
	for (i = 0; i < t.n; i++) {
		held += t.s[i].held;
		resumed += t.s[i].resumed;
	}
	if (opts->stats) {
		memset(opts->stats, 0, sizeof(*opts->stats));
		opts->stats->bytes = in.bytes;
		opts->stats->layers = t.nl;
		opts->stats->layers_skipped = held;
		opts->stats->sections_resumed = resumed;
		opts->stats->sections = t.n;
		opts->stats->passes = t.passes ? t.passes : 1;
	}
	xs_event(ctx, datastore, t.name, "complete");
	vsm__log(ctx, VSM_LOG_INFO, "container '%s' received into datastore '%s' (%llu bytes, "
		 "%llu layers held already, %llu sections resumed)", t.name, datastore,
		 (unsigned long long)in.bytes, (unsigned long long)held,
		 (unsigned long long)resumed);
out:
	if (rc < 0 && started) {
		const vsm_error *e = vsm_error_last();

		snprintf(ev, sizeof(ev), "abort %s", e && e->message ? e->message : "failed");
		xs_event(ctx, datastore, t.name, ev);
	}
	if (lockfd >= 0)
		close(lockfd);
	free(bpath);
	free(buf);
	free(end);
	free_recv(&t);
	return rc;
}

VSM_API int vsm_receive_list_have(vsm_ctx *ctx, const char *datastore, int out_fd,
				  unsigned int flags)
{
	vsm_dstore *ds;
	size_t r, j, k;
	FILE *f;
	int rc, fd2;

	vsm__error_reset();
	if (!ctx || !datastore || out_fd < 0)
		return vsm_err(VSM_EINVAL, "vsm_receive_list_have: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_receive_list_have: unknown flags 0x%x", flags);
	if ((fd2 = dup(out_fd)) < 0 || !(f = fdopen(fd2, "w"))) {
		if (fd2 >= 0)
			close(fd2);
		return vsm_err(VSM_EIO, "vsm_receive_list_have: %s", strerror(errno));
	}
	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, datastore)) < 0 || (rc = vsm__ds_refresh(ctx, ds)) < 0)
		goto out;
	fprintf(f, "# libvsm have list of datastore '%s': content ID, layer digest\n", datastore);
	for (r = 0; r < ds->n_recs; r++) {
		const vsm_record *rec = ds->recs[r];

		if (rec->destroying || rec->migration)
			continue;
		for (j = 0; j < rec->n_layers; j++) {
			const vsm_rec_frozen *e = &rec->layers[j];
			xlayer xl = {0};
			bfile b = {0};
			bool seen = false;

			if (!e->cid)
				continue;
			/* Another record sharing this table entry said it. */
			for (k = 0; k < r && !seen; k++) {
				const vsm_rec_frozen *o = ck_layer(ds->recs[k], e->key);

				seen = o && !ds->recs[k]->destroying && !ds->recs[k]->migration;
			}
			for (k = 0; k < j && !seen; k++)
				seen = !strcmp(rec->layers[k].key, e->key);
			if (seen)
				continue;
			/* The digest of what the layer holds now, as a sender
			 * would compute it (not the recorded one: the layer
			 * is made again from these bytes). */
			xl.key = e->key;
			xl.format = e->format;
			xl.backing = e->backing ? 0 : -1;
			xl.cid = e->cid;
			{
				vsm_cow *c = NULL;

				if ((rc = ck_cow_open(&c, ds, e->key, e->format, true, true)) < 0)
					goto out;
				xl.size = vsm_cow_size(c);
				vsm_cow_close(c);
			}
			b.path = e->key;
			if ((rc = ck_export_layer(&b, ds, &xl, true)) < 0)
				goto out;
			fprintf(f, "%s %s\n", e->cid, xl.digest);
		}
	}
out:
	vsm__ctx_unlock(ctx);
	if (fclose(f) != 0 && rc == 0)
		rc = vsm_err(VSM_EIO, "vsm_receive_list_have: %s", strerror(errno));
	return rc;
}

VSM_API int vsm_receive_abort(vsm_ctx *ctx, const char *uuid, unsigned int flags)
{
	DIR *d;
	struct dirent *e;
	char p[4200];
	int found = 0, rc = 0, lfd;

	vsm__error_reset();
	if (!ctx)
		return vsm_err(VSM_EINVAL, "vsm_receive_abort: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_receive_abort: unknown flags 0x%x", flags);
	if (uuid && !vsm__uuid_valid(uuid))
		return vsm_err(VSM_EINVAL, "vsm_receive_abort: '%s' is not a UUID", uuid);
	if (!(d = opendir(ctx->state_dir)))
		return vsm_err(VSM_EIO, "state directory '%s': %s", ctx->state_dir, strerror(errno));
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "receive-", 8) || !vsm__uuid_valid(e->d_name + 8) ||
		    (uuid && strcmp(e->d_name + 8, uuid)))
			continue;
		snprintf(p, sizeof(p), "%s/%s/lock", ctx->state_dir, e->d_name);
		/* Not under a receive that is running. */
		if ((lfd = open(p, O_RDWR | O_CLOEXEC)) >= 0 && flock(lfd, LOCK_EX | LOCK_NB) < 0) {
			close(lfd);
			rc = vsm_err(VSM_EBUSY, "container %s: a receive of it is running",
				     e->d_name + 8);
			break;
		}
		snprintf(p, sizeof(p), "%s/%s", ctx->state_dir, e->d_name);
		rc = xs_rmdir(p);
		if (lfd >= 0)
			close(lfd);
		if (rc < 0)
			break;
		found++;
	}
	closedir(d);
	if (rc == 0 && !found)
		rc = vsm_err(VSM_ENOTFOUND, "no partial transfer%s%s in state directory '%s'",
			     uuid ? " of container " : "", uuid ? uuid : "", ctx->state_dir);
	return rc;
}
