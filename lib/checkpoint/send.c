/*
 * vsm_container_send: the sending side of a cross-site transfer
 * (doc/cross-site.md). The container is exported as a bundle into the
 * state directory (kept there until the transfer completes, so that a
 * new send after a broken one carries the same bytes), cut into its
 * sections, and framed onto the stream; sections the receiver holds are
 * announced, not sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "codec.h"
#include "xfer.h"

typedef struct {
	uint64_t off, len;  /* in the bundle file; a layer's without its 8-byte tail */
	bool layer, top, skip;
	char cid[VSM_UUID_STRLEN + 1];
	char digest[B_DIGEST_HEX + 1];
} sect;

typedef struct {
	char *text;        /* the manifest */
	sect *s;
	size_t n, nl;
	uint64_t data;     /* bytes of every section */
} cut;

static void cut_free(cut *k)
{
	free(k->text);
	free(k->s);
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off, const char *path)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t r = pread(fd, p, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return vsm_err(VSM_EIO, "bundle '%s': read failed at byte %llu: %s", path,
				       (unsigned long long)off, r < 0 ? strerror(errno) : "short file");
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Where each section of the bundle we wrote ourselves starts and ends. */
static int cut_bundle(cut *k, int fd, const char *path)
{
	uint8_t h[B_HDR], rec[24];
	json_object *m = NULL, *jl, *jb;
	uint64_t mlen, pos;
	size_t i, nb;
	int rc = 0;

	memset(k, 0, sizeof(*k));
	if ((rc = pread_all(fd, h, sizeof(h), 0, path)) < 0)
		return rc;
	mlen = vsm__get_le64(h + 16);
	if (memcmp(h, B_MAGIC, 8) || mlen > B_MANIFEST_MAX)
		return vsm_err(VSM_ECORRUPT, "bundle '%s': not a bundle", path);
	if (!(k->text = malloc(mlen + 1)))
		return vsm_err(VSM_ENOMEM, "out of memory");
	if ((rc = pread_all(fd, k->text, mlen, B_HDR, path)) < 0)
		return rc;
	k->text[mlen] = '\0';
	if (!(m = json_tokener_parse(k->text)) ||
	    !json_object_object_get_ex(m, "layers", &jl) ||
	    !json_object_object_get_ex(m, "blobs", &jb)) {
		rc = vsm_err(VSM_ECORRUPT, "bundle '%s': manifest is not valid", path);
		goto out;
	}
	k->nl = json_object_array_length(jl);
	nb = json_object_array_length(jb);
	k->n = k->nl + nb;
	if (!(k->s = calloc(k->n ? k->n : 1, sizeof(*k->s)))) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	pos = B_HDR + mlen;
	for (i = 0; i < k->n; i++) {
		sect *s = &k->s[i];

		s->off = pos;
		if (i >= k->nl) {
			s->len = json_object_get_uint64(json_object_array_get_idx(jb, i - k->nl));
			pos += s->len;
			k->data += s->len;
			continue;
		}
		{
			json_object *e = json_object_array_get_idx(jl, i), *t;
			const char *cid = jstr(e, "cid"), *dg = jstr(e, "digest");

			s->layer = true;
			s->top = json_object_object_get_ex(e, "top", &t) && json_object_get_boolean(t);
			snprintf(s->cid, sizeof(s->cid), "%s", cid ? cid : "");
			snprintf(s->digest, sizeof(s->digest), "%s", dg ? dg : "");
		}
		for (;;) {
			if ((rc = pread_all(fd, rec, sizeof(rec), pos, path)) < 0)
				goto out;
			pos += sizeof(rec);
			if (vsm__get_le32(rec) == REC_DATA)
				pos += vsm__get_le64(rec + 16);
			else if (vsm__get_le32(rec) == REC_END)
				break;
			else if (vsm__get_le32(rec) != REC_ZERO) {
				rc = vsm_err(VSM_ECORRUPT, "bundle '%s': layer %zu is not valid", path, i);
				goto out;
			}
		}
		s->len = pos - s->off;
		k->data += s->len;
		pos += 8; /* the running checksum: the receiver writes its own */
	}
out:
	json_object_put(m);
	return rc;
}

/* The have list of a one-way send: "CID DIGEST" lines. */
static int read_have(cut *k, const char *path)
{
	FILE *f = fopen(path, "re");
	char line[256], cid[64], dg[128];
	size_t i;

	if (!f)
		return vsm_err(errno == ENOENT ? VSM_ENOTFOUND : VSM_EIO, "have list '%s': %s",
			       path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || sscanf(line, "%63s %127s", cid, dg) != 2)
			continue;
		for (i = 0; i < k->nl; i++)
			if (!k->s[i].top && k->s[i].cid[0] && k->s[i].digest[0] &&
			    !strcmp(k->s[i].cid, cid) && !strcmp(k->s[i].digest, dg))
				k->s[i].skip = true;
	}
	fclose(f);
	return 0;
}

/* Mark the sections listed under @key in answer @a; count them. */
static uint64_t mark(cut *k, json_object *a, const char *key)
{
	json_object *arr;
	uint64_t n = 0;
	size_t i;

	if (!json_object_object_get_ex(a, key, &arr) || !json_object_is_type(arr, json_type_array))
		return 0;
	for (i = 0; i < json_object_array_length(arr); i++) {
		int64_t x = json_object_get_int64(json_object_array_get_idx(arr, i));

		if (x >= 0 && (uint64_t)x < k->n && !k->s[x].skip) {
			k->s[x].skip = true;
			n++;
		}
	}
	return n;
}

/* The receiver's first answer on a two-way channel: the layers it holds
 * and the sections an earlier transfer delivered. */
static int read_answer(cut *k, xs_chan *in, uint8_t *buf, uint64_t *held, uint64_t *resumed)
{
	json_object *a = NULL;
	uint32_t type;
	size_t n;
	int rc;

	if ((rc = xs_frame_get(in, &type, buf, &n)) < 0)
		return rc;
	buf[n < XS_PAYLOAD_MAX ? n : XS_PAYLOAD_MAX - 1] = '\0';
	if (type != XF_HAVE || !(a = json_tokener_parse((char *)buf)))
		return vsm_err(VSM_ECORRUPT, "answer channel: the receiver's first answer is not "
			       "valid");
	if (jstr(a, "error"))
		rc = vsm_err(VSM_EIO, "the receiver refused: %s", jstr(a, "error"));
	*resumed = mark(k, a, "resumed");
	*held = mark(k, a, "skip");
	json_object_put(a);
	return rc;
}

static int put_u32_frame(xs_chan *ch, uint32_t type, uint32_t v)
{
	uint8_t b[4];

	vsm__put_le32(b, v);
	return xs_frame_put(ch, type, b, sizeof(b));
}

/* Make sure the kept bundle at @path is a snapshot of @c as it is now
 * (the record's sequence number and what is sent say so), else export a
 * new one. */
static int snapshot(vsm_container *c, const char *checkpoint, const char *path,
		    const char *idpath, uint64_t seq)
{
	vsm_bundle_opts bo = VSM_BUNDLE_OPTS_INIT;
	char want[512], have[512] = "";
	FILE *f;
	int rc;

	snprintf(want, sizeof(want), "%llu %s\n", (unsigned long long)seq,
		 checkpoint ? checkpoint : "-");
	if ((f = fopen(idpath, "re"))) {
		if (!fgets(have, sizeof(have), f))
			have[0] = '\0';
		fclose(f);
	}
	if (!strcmp(want, have) && access(path, R_OK) == 0)
		return 0;
	unlink(idpath);
	unlink(path);
	if ((rc = vsm_bundle_export(c, checkpoint, path, &bo)) < 0)
		return rc;
	if (!(f = fopen(idpath, "we")) || fputs(want, f) < 0 || fclose(f) != 0) {
		unlink(path);
		return vsm_err(VSM_EIO, "'%s': %s", idpath, strerror(errno));
	}
	return 0;
}

/* What one pass sends: the cut (bundle) at @path, framed after a
 * manifest that says whether more passes follow. Sections whose digest
 * an earlier pass of this call sent (@sent, @nsent) are announced, not
 * sent again. */
typedef struct {
	vsm_ctx *ctx;
	vsm_container *c;
	const vsm_send_opts *opts;
	const char *name, *uuid, *path;
	int64_t ctime;
	bool thick;
	unsigned int pass, passes;
	xs_chan *out, *in;
	uint8_t *buf;
	char (*sent)[B_DIGEST_HEX + 1];
	size_t nsent, capsent;
	uint8_t (*bsha)[XS_SHA]; /* the blobs the last pass ended with */
	size_t nb;
	uint64_t skipped, resumed, layers, sections;
} sender;

static int send_pass(sender *sd)
{
	cut k = {0};
	uint8_t (*shas)[XS_SHA] = NULL, top[XS_SHA], *buf = sd->buf;
	json_object *j = NULL;
	char ev[128];
	int fd, rc;
	size_t i, x;

	if ((fd = open(sd->path, O_RDONLY | O_CLOEXEC)) < 0)
		return vsm_err(VSM_EIO, "bundle '%s': %s", sd->path, strerror(errno));
	if ((rc = cut_bundle(&k, fd, sd->path)) < 0)
		goto out;
	if (!(shas = calloc(k.n ? k.n : 1, XS_SHA))) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	sd->out->total = sd->out->bytes + k.data;
	/* The counts describe the last pass (the container as received). */
	sd->skipped = sd->resumed = 0;
	j = json_object_new_object();
	json_object_object_add(j, "format", json_object_new_string("libvsm-stream"));
	json_object_object_add(j, "uuid", json_object_new_string(sd->uuid));
	json_object_object_add(j, "name", json_object_new_string(sd->name));
	json_object_object_add(j, "ctime", json_object_new_int64(sd->ctime));
	json_object_object_add(j, "thick", json_object_new_boolean(sd->thick));
	json_object_object_add(j, "sections", json_object_new_uint64(k.n));
	json_object_object_add(j, "bytes", json_object_new_uint64(k.data));
	if (sd->passes > 1) {
		json_object_object_add(j, "pass", json_object_new_uint64(sd->pass));
		json_object_object_add(j, "passes", json_object_new_uint64(sd->passes));
	}
	json_object_object_add(j, "manifest", json_object_new_string(k.text));
	{
		const char *t = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);

		if ((rc = xs_frame_put(sd->out, XF_MANIFEST, t, strlen(t))) < 0)
			goto out;
	}
	if (sd->in->fd >= 0) {
		if ((rc = read_answer(&k, sd->in, buf, &sd->skipped, &sd->resumed)) < 0)
			goto out;
	} else if (sd->opts->have) {
		if ((rc = read_have(&k, sd->opts->have)) < 0)
			goto out;
		for (i = 0; i < k.n; i++)
			sd->skipped += k.s[i].skip;
	}
	/* A layer an earlier pass sent is at the receiver (one-way too). */
	for (i = 0; i < k.nl; i++)
		for (x = 0; x < sd->nsent && !k.s[i].skip; x++)
			if (k.s[i].digest[0] && !strcmp(sd->sent[x], k.s[i].digest))
				k.s[i].skip = true;
	/* So is a blob that reads as the last pass's at its place (the
	 * receiver keeps blobs between the passes of one transfer). */
	for (i = k.nl; sd->pass > 1 && i < k.n && i - k.nl < sd->nb; i++) {
		struct sha256_ctx d;
		uint8_t sha[XS_SHA];
		uint64_t off;

		if (k.s[i].skip)
			continue;
		sha256_init(&d);
		for (off = 0; off < k.s[i].len;) {
			size_t n = k.s[i].len - off < B_CHUNK ? (size_t)(k.s[i].len - off) : B_CHUNK;

			if ((rc = pread_all(fd, buf, n, k.s[i].off + off, sd->path)) < 0)
				goto out;
			sha256_update(&d, n, buf);
			off += n;
		}
		sha256_digest(&d, XS_SHA, sha);
		if (!memcmp(sha, sd->bsha[i - k.nl], XS_SHA))
			k.s[i].skip = true;
	}
	/* What this pass puts on the stream, frame by frame, for progress. */
	{
		uint64_t t = sd->out->bytes + XS_FRAME_HDR + 4 + k.n * XS_SHA + XS_SHA;

		for (i = 0; i < k.n; i++)
			t += k.s[i].skip ? XS_FRAME_HDR + 4 :
			     XS_FRAME_HDR + 4 + XS_FRAME_HDR + 4 + 8 + XS_SHA + k.s[i].len +
			     XS_FRAME_HDR * ((k.s[i].len + B_CHUNK - 1) / B_CHUNK);
		sd->out->total = t;
	}

	for (i = 0; i < k.n; i++) {
		sect *s = &k.s[i];
		struct sha256_ctx d;
		uint64_t off;

		sha256_init(&d);
		if (!s->skip && (rc = put_u32_frame(sd->out, XF_BEGIN, (uint32_t)i)) < 0)
			goto out;
		for (off = 0; off < s->len;) {
			size_t n = s->len - off < B_CHUNK ? (size_t)(s->len - off) : B_CHUNK;

			if ((rc = pread_all(fd, buf, n, s->off + off, sd->path)) < 0)
				goto out;
			sha256_update(&d, n, buf);
			if (!s->skip && ((rc = xs_frame_put(sd->out, XF_DATA, buf, n)) < 0 ||
					 (rc = xs_tick(sd->out)) < 0))
				goto out;
			off += n;
		}
		sha256_digest(&d, XS_SHA, shas[i]);
		if (s->skip) {
			if ((rc = put_u32_frame(sd->out, XF_SKIP, (uint32_t)i)) < 0)
				goto out;
			continue;
		}
		{
			uint8_t e[4 + 8 + XS_SHA];

			vsm__put_le32(e, (uint32_t)i);
			vsm__put_le64(e + 4, s->len);
			memcpy(e + 12, shas[i], XS_SHA);
			if ((rc = xs_frame_put(sd->out, XF_SECTION, e, sizeof(e))) < 0)
				goto out;
		}
		if (s->layer && s->digest[0]) {
			if (sd->nsent == sd->capsent) {
				size_t nc = sd->capsent ? 2 * sd->capsent : 16;
				void *p = realloc(sd->sent, nc * sizeof(*sd->sent));

				if (!p) {
					rc = vsm_err(VSM_ENOMEM, "out of memory");
					goto out;
				}
				sd->sent = p;
				sd->capsent = nc;
			}
			memcpy(sd->sent[sd->nsent++], s->digest, sizeof(s->digest));
		}
	}
	/* The end: every section's SHA-256 and the container's (manifest,
	 * then the sections' in order). */
	{
		struct sha256_ctx d;
		size_t n = 4 + k.n * XS_SHA + XS_SHA;

		if (n > XS_PAYLOAD_MAX) {
			rc = vsm_err(VSM_EINVAL, "container '%s' has too many sections", sd->name);
			goto out;
		}
		sha256_init(&d);
		sha256_update(&d, strlen(k.text), (const uint8_t *)k.text);
		for (i = 0; i < k.n; i++)
			sha256_update(&d, XS_SHA, shas[i]);
		sha256_digest(&d, XS_SHA, top);
		vsm__put_le32(buf, (uint32_t)k.n);
		memcpy(buf + 4, shas, k.n * XS_SHA);
		memcpy(buf + 4 + k.n * XS_SHA, top, XS_SHA);
		if ((rc = xs_frame_put(sd->out, XF_END, buf, n)) < 0)
			goto out;
	}
	sd->layers = k.nl;
	sd->sections = k.n;
	free(sd->bsha);
	sd->nb = 0;
	if (!(sd->bsha = malloc((k.n - k.nl + 1) * XS_SHA))) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	sd->nb = k.n - k.nl;
	memcpy(sd->bsha, shas[k.nl], sd->nb * XS_SHA);
	snprintf(ev, sizeof(ev), "pass %u %llu", sd->pass, (unsigned long long)sd->out->bytes);
	xs_event(sd->ctx, vsm_container_datastore(sd->c), sd->name, ev);
out:
	close(fd);
	json_object_put(j);
	cut_free(&k);
	free(shas);
	return rc;
}

/* Drop the temporary checkpoints of passes 1..@n (newest first): a merge
 * each, so the source reads as before. A failure is logged: the data is
 * whole either way, the name stays visible until deleted by hand. */
static void drop_cuts(vsm_ctx *ctx, vsm_container *c, const char *name, unsigned int n)
{
	char cp[32];

	while (n) {
		snprintf(cp, sizeof(cp), XS_CUT "%u", n--);
		if (vsm_checkpoint_delete(c, cp, 0) < 0) {
			const vsm_error *e = vsm_error_last();

			vsm__log(ctx, VSM_LOG_WARN, "container '%s': temporary checkpoint '%s' "
				 "stays: %s", name, cp, e && e->message ? e->message : "?");
		}
	}
	vsm__error_reset();
}

VSM_API int vsm_container_send(vsm_container *c, int out_fd, int in_fd, const vsm_send_opts *opts)
{
	vsm_send_opts defaults = VSM_SEND_OPTS_INIT;
	xs_chan out = {0}, in = {0};
	sender sd = {0};
	vsm_dstore *ds;
	const vsm_record *cur;
	char uuid[VSM_UUID_STRLEN + 1], *name = NULL, *path = NULL, *idpath = NULL, ev[128];
	unsigned int passes, cuts = 0;
	uint64_t seq;
	int64_t ctime;
	bool thick, started = false;
	int rc;
	vsm_ctx *ctx;

	vsm__error_reset();
	if (!c || out_fd < 0)
		return vsm_err(VSM_EINVAL, "vsm_container_send: NULL argument or no stream");
	if (!opts)
		opts = &defaults;
	if (opts->version == 0 || opts->version > VSM_TRANSFER_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_send_opts version %u is not supported",
			       opts->version);
	if (opts->flags & ~VSM_SEND_REMOVE_SOURCE)
		return vsm_err(VSM_EINVAL, "vsm_container_send: unknown flags 0x%x", opts->flags);
	if ((opts->flags & VSM_SEND_REMOVE_SOURCE) && in_fd < 0)
		return vsm_err(VSM_EINVAL, "vsm_container_send: removing the source needs a two-way "
			       "channel (the receiver's acknowledgement)");
	passes = opts->passes ? opts->passes : 1;
	if (passes > 1 && opts->checkpoint)
		return vsm_err(VSM_EINVAL, "vsm_container_send: checkpoint '%s' does not change: "
			       "it is sent in one pass, not %u", opts->checkpoint, passes);
	if (passes > XS_PASSES_MAX)
		return vsm_err(VSM_EINVAL, "vsm_container_send: %u passes: at most %u", passes,
			       XS_PASSES_MAX);
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, vsm_container_datastore(c))) < 0 ||
	    (rc = vsm__ds_refresh(ctx, ds)) < 0) {
		vsm__ctx_unlock(ctx);
		return rc;
	}
	if (!(cur = vsm__ds_find(ds, NULL, vsm_container_uuid(c))) || cur->destroying) {
		vsm__ctx_unlock(ctx);
		return vsm_err(VSM_ENOTFOUND, "container '%s' no longer exists",
			       vsm_container_name(c));
	}
	if (cur->migration) {
		vsm__ctx_unlock(ctx);
		return vsm_err(VSM_EBUSY, "container '%s' is being migrated", cur->name);
	}
	memcpy(uuid, cur->uuid, sizeof(uuid));
	ctime = cur->ctime;
	thick = cur->thick;
	name = vsm__strdup(cur->name);
	vsm__ctx_unlock(ctx);
	if (!name)
		return -VSM_ENOMEM;

	if ((rc = xs_send_path(ctx, uuid, ".vsmb", &path)) < 0 ||
	    (rc = xs_send_path(ctx, uuid, ".id", &idpath)) < 0)
		goto out;
	if (!(sd.buf = malloc(XS_PAYLOAD_MAX))) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	out.fd = out_fd;
	out.what = "stream";
	out.progress = opts->progress;
	out.payload = opts->payload;
	in.fd = in_fd;
	in.what = "answer channel";
	sd.ctx = ctx;
	sd.c = c;
	sd.opts = opts;
	sd.name = name;
	sd.uuid = uuid;
	sd.path = path;
	sd.ctime = ctime;
	sd.thick = thick;
	sd.passes = passes;
	sd.out = &out;
	sd.in = &in;

	for (sd.pass = 1; sd.pass <= passes; sd.pass++) {
		/* A pass before the last freezes a cut: a temporary
		 * checkpoint, whose layers do not change any more. */
		if (sd.pass < passes) {
			char cp[32];

			snprintf(cp, sizeof(cp), XS_CUT "%u", sd.pass);
			if ((rc = vsm_checkpoint_create(NULL, c, cp, NULL)) < 0) {
				vsm__error_prefix("container '%s': pass %u of %u", name, sd.pass,
						  passes);
				goto out;
			}
			cuts = sd.pass;
		}
		if ((rc = vsm_container_refresh(c)) < 0)
			goto out;
		vsm__ctx_lock(ctx);
		cur = vsm__ds_find(ds, NULL, uuid);
		seq = cur ? cur->seq : 0;
		vsm__ctx_unlock(ctx);
		/* Each pass reads the container anew: its tops may have
		 * been written since the last cut without a record change. */
		if (passes > 1)
			unlink(idpath);
		if ((rc = snapshot(c, opts->checkpoint, path, idpath, seq)) < 0)
			goto out;
		if (!started) {
			xs_event(ctx, vsm_container_datastore(c), name, "start");
			started = true;
			if ((rc = xs_header_put(&out, in_fd >= 0 ? 1 : 0)) < 0)
				goto out;
		}
		if ((rc = send_pass(&sd)) < 0)
			goto out;
	}
	if (in_fd >= 0) {
		json_object *a;
		uint32_t type;
		size_t n;

		if ((rc = xs_frame_get(&in, &type, sd.buf, &n)) < 0)
			goto out;
		sd.buf[n < XS_PAYLOAD_MAX ? n : XS_PAYLOAD_MAX - 1] = '\0';
		if (type != XF_DONE || !(a = json_tokener_parse((char *)sd.buf))) {
			rc = vsm_err(VSM_ECORRUPT, "answer channel: the receiver's last answer is "
				     "not valid");
			goto out;
		}
		if (jstr(a, "error")) {
			rc = vsm_err(VSM_EIO, "the receiver failed: %s", jstr(a, "error"));
			json_object_put(a);
			goto out;
		}
		json_object_put(a);
	}
	/* Delivered: the snapshot is not needed for a resume any more. */
	unlink(path);
	unlink(idpath);
	if (cuts) {
		drop_cuts(ctx, c, name, cuts);
		cuts = 0;
	}
	if (opts->flags & VSM_SEND_REMOVE_SOURCE) {
		if ((rc = vsm_container_destroy(c, 0)) < 0) {
			vsm__error_prefix("container '%s' was received, but the source stays",
					  name);
			goto out;
		}
	}
	if (opts->stats) {
		memset(opts->stats, 0, sizeof(*opts->stats));
		opts->stats->bytes = out.bytes;
		opts->stats->layers = sd.layers;
		opts->stats->layers_skipped = sd.skipped;
		opts->stats->sections_resumed = sd.resumed;
		opts->stats->sections = sd.sections;
		opts->stats->passes = passes;
	}
	xs_event(ctx, vsm_container_datastore(c), name, "complete");
	vsm__log(ctx, VSM_LOG_INFO, "container '%s': sent %llu bytes in %u pass%s (%llu layers "
		 "left out)", name, (unsigned long long)out.bytes, passes, passes > 1 ? "es" : "",
		 (unsigned long long)sd.skipped);
out:
	if (rc < 0 && started) {
		const vsm_error *e;

		if (out.cancelled) {
			xs_frame_put(&out, XF_ABORT, "cancelled", 9);
			vsm__error_reset();
			rc = vsm_err(VSM_ECANCELED, "sending container '%s' was cancelled by the "
				     "progress callback", name);
		}
		e = vsm_error_last();
		snprintf(ev, sizeof(ev), "abort %s", e && e->message ? e->message : "failed");
		xs_event(ctx, vsm_container_datastore(c), name, ev);
	}
	if (rc < 0 && cuts) {
		/* The source as it was: no temporary checkpoint. A pass
		 * snapshot made of a cut is of no use to a resume either. */
		const vsm_error *e = vsm_error_last();
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : "");
		drop_cuts(ctx, c, name, cuts);
		unlink(path);
		unlink(idpath);
		vsm__error_reset();
		rc = vsm_err(-rc, "%s", msg);
	}
	free(sd.buf);
	free(sd.sent);
	free(sd.bsha);
	free(path);
	free(idpath);
	free(name);
	return rc;
}
