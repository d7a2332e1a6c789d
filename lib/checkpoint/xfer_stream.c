/*
 * The cross-site stream's framing (doc/cross-site.md): the stream
 * header, frames with a CRC-32 of their head and one of their payload,
 * reads that tell a broken connection (short) from damaged bytes (bad
 * CRC), progress, and the state-directory names a transfer uses.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "xfer.h"

static int put_all(xs_chan *ch, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t w = write(ch->fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return vsm_err(VSM_EIO, "%s: write failed after %llu bytes: %s", ch->what,
				       (unsigned long long)ch->bytes,
				       w < 0 ? strerror(errno) : "nothing written");
		p += w;
		n -= (size_t)w;
		ch->bytes += (uint64_t)w;
	}
	return 0;
}

/* 0, or -VSM_EIO when the stream ends first (@got says how much came). */
static int get_all(xs_chan *ch, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t r = read(ch->fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return vsm_err(VSM_EIO, "%s: read failed after %llu bytes: %s", ch->what,
				       (unsigned long long)ch->bytes, strerror(errno));
		if (r == 0)
			return vsm_err(VSM_EIO, "%s ended after %llu bytes, before its end "
				       "(connection broken?)", ch->what,
				       (unsigned long long)ch->bytes);
		p += r;
		n -= (size_t)r;
		ch->bytes += (uint64_t)r;
	}
	return 0;
}

int xs_header_put(xs_chan *ch, uint32_t flags)
{
	uint8_t h[XS_HDR] = {0};

	memcpy(h, XS_MAGIC, 8);
	vsm__put_le32(h + 8, XS_VERSION);
	vsm__put_le32(h + 12, XS_HDR);
	vsm__put_le32(h + 16, flags);
	vsm__put_le32(h + 28, vsm__crc32(h, 28));
	return put_all(ch, h, sizeof(h));
}

int xs_header_get(xs_chan *ch, uint32_t *flags)
{
	uint8_t h[XS_HDR];
	int rc;

	if ((rc = get_all(ch, h, sizeof(h))) < 0)
		return rc;
	if (memcmp(h, XS_MAGIC, 8))
		return vsm_err(VSM_ECORRUPT, "%s: not a libvsm transfer stream (bad magic)",
			       ch->what);
	if (vsm__get_le32(h + 28) != vsm__crc32(h, 28))
		return vsm_err(VSM_ECORRUPT, "%s: the stream header fails its checksum", ch->what);
	if (vsm__get_le32(h + 8) != XS_VERSION || vsm__get_le32(h + 12) != XS_HDR)
		return vsm_err(VSM_EVERSION, "%s: stream version %u is not supported (this "
			       "receiver reads version %u)", ch->what, vsm__get_le32(h + 8),
			       XS_VERSION);
	*flags = vsm__get_le32(h + 16);
	return 0;
}

int xs_frame_put(xs_chan *ch, uint32_t type, const void *payload, size_t n)
{
	uint8_t h[XS_FRAME_HDR];
	int rc;

	if (n > XS_PAYLOAD_MAX)
		return vsm_err(VSM_EINVAL, "%s: frame of %zu bytes is too large", ch->what, n);
	vsm__put_le32(h, type);
	vsm__put_le32(h + 4, (uint32_t)n);
	vsm__put_le32(h + 8, vsm__crc32(payload, n));
	vsm__put_le32(h + 12, vsm__crc32(h, 12));
	if ((rc = put_all(ch, h, sizeof(h))) < 0 || (rc = put_all(ch, payload, n)) < 0)
		return rc;
	ch->frames++;
	return 0;
}

int xs_frame_get(xs_chan *ch, uint32_t *type, uint8_t *buf, size_t *n)
{
	uint8_t h[XS_FRAME_HDR];
	uint64_t at = ch->bytes;
	uint32_t len;
	int rc;

	if ((rc = get_all(ch, h, sizeof(h))) < 0)
		return rc;
	len = vsm__get_le32(h + 4);
	if (vsm__get_le32(h + 12) != vsm__crc32(h, 12) || len > XS_PAYLOAD_MAX ||
	    vsm__get_le32(h) < XF_MANIFEST || vsm__get_le32(h) > XF_DONE)
		return vsm_err(VSM_ECORRUPT, "%s: frame %llu at byte %llu is damaged (its head "
			       "fails its checksum)", ch->what, (unsigned long long)ch->frames,
			       (unsigned long long)at);
	if ((rc = get_all(ch, buf, len)) < 0)
		return rc;
	if (vsm__get_le32(h + 8) != vsm__crc32(buf, len))
		return vsm_err(VSM_ECORRUPT, "%s: frame %llu at byte %llu is damaged (its data "
			       "fails its checksum)", ch->what, (unsigned long long)ch->frames,
			       (unsigned long long)at);
	*type = vsm__get_le32(h);
	*n = len;
	ch->frames++;
	return 0;
}

int xs_tick(xs_chan *ch)
{
	int rc;

	if (ch->cancelled)
		return -VSM_ECANCELED;
	if (ch->progress &&
	    (rc = ch->progress(ch->bytes, ch->total > ch->bytes ? ch->total : ch->bytes,
			       ch->payload)) != 0) {
		ch->cancelled = true;
		return vsm_err(VSM_ECANCELED, "%s: cancelled by the progress callback", ch->what);
	}
	return 0;
}

void xs_hex(const uint8_t sha[XS_SHA], char out[2 * XS_SHA + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < XS_SHA; i++) {
		out[2 * i] = hex[sha[i] >> 4];
		out[2 * i + 1] = hex[sha[i] & 15];
	}
	out[2 * XS_SHA] = '\0';
}

int xs_send_path(vsm_ctx *ctx, const char *uuid, const char *suffix, char **out)
{
	if (asprintf(out, "%s/send-%s%s", ctx->state_dir, uuid, suffix) < 0) {
		*out = NULL;
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	return 0;
}

int xs_recv_dir(vsm_ctx *ctx, const char *uuid, char **out)
{
	if (asprintf(out, "%s/receive-%s", ctx->state_dir, uuid) < 0) {
		*out = NULL;
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	return 0;
}

int xs_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[4096];

	if (!d)
		return errno == ENOENT ? 0 : vsm_err(VSM_EIO, "'%s': %s", dir, strerror(errno));
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	if (rmdir(dir) < 0 && errno != ENOENT)
		return vsm_err(VSM_EIO, "'%s': %s", dir, strerror(errno));
	return 0;
}

void xs_event(vsm_ctx *ctx, const char *datastore, const char *container, const char *detail)
{
	vsm__event_emit(ctx->events, VSM_EVENT_MIGRATION, datastore, container, NULL, detail, 0);
}
