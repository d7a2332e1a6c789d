/*
 * Private interface of cross-site transfer (send.c, receive.c): the
 * stream's framing (xfer_stream.c) and the names of what a transfer
 * keeps in the state directory. doc/cross-site.md has the format.
 */
#ifndef VSM_CKPT_XFER_H
#define VSM_CKPT_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "vsm/transfer.h"

#define XS_MAGIC "VSMSTRM1"
#define XS_VERSION 1
#define XS_HDR 32
#define XS_FRAME_HDR 16
#define XS_PAYLOAD_MAX ((1u << 20) + 4096)

/* Frame types. Sender to receiver: */
#define XF_MANIFEST 1  /* JSON: the container and the bundle manifest */
#define XF_BEGIN 2     /* u32 section: its bytes follow in XF_DATA frames */
#define XF_DATA 3      /* bytes of the open section */
#define XF_SECTION 4   /* u32 section, u64 bytes, SHA-256 of the section */
#define XF_SKIP 5      /* u32 section: the receiver holds it (or said so) */
#define XF_END 6       /* u32 n, n SHA-256 of the sections, SHA-256 of the container */
#define XF_ABORT 7     /* text: why the sender gave up */
/* Receiver to sender (two-way): */
#define XF_HAVE 8      /* JSON: {"skip":[sections],"resumed":[sections],"error":text} */
#define XF_DONE 9      /* JSON: {"uuid":…,"name":…} or {"error":text} */

#define XS_SHA 32

/* Iterative passes: pass k < N freezes a cut as temporary checkpoint
 * XS_CUT "k" on the source; both sides delete them at the end. */
#define XS_CUT ".xfer-"
#define XS_PASSES_MAX 100

typedef struct {
	int fd;
	const char *what;      /* "stream" or "answer channel", for messages */
	uint64_t bytes;        /* moved so far */
	uint64_t frames;
	vsm_progress_fn progress;
	void *payload;
	uint64_t total;        /* for progress; 0: unknown */
	bool cancelled;
} xs_chan;

/* The 32-byte stream header: magic, version, flags, CRC-32. */
int xs_header_put(xs_chan *ch, uint32_t flags);
int xs_header_get(xs_chan *ch, uint32_t *flags);
/* One frame: a 16-byte head (type, length, CRC-32 of the payload, CRC-32
 * of the head) and the payload. */
int xs_frame_put(xs_chan *ch, uint32_t type, const void *payload, size_t n);
/* Read one frame into @buf (XS_PAYLOAD_MAX bytes); a short stream is
 * -VSM_EIO (broken), a bad CRC or length -VSM_ECORRUPT. */
int xs_frame_get(xs_chan *ch, uint32_t *type, uint8_t *buf, size_t *n);
/* Progress on @ch; a non-zero answer cancels (-VSM_ECANCELED). */
int xs_tick(xs_chan *ch);

/* SHA-256 as 64 hex digits. */
void xs_hex(const uint8_t sha[XS_SHA], char out[2 * XS_SHA + 1]);

/* STATE_DIR/send-UUID.vsmb, STATE_DIR/receive-UUID (a directory). */
int xs_send_path(vsm_ctx *ctx, const char *uuid, const char *suffix, char **out);
int xs_recv_dir(vsm_ctx *ctx, const char *uuid, char **out);
/* rm -r of a receive directory (flat). */
int xs_rmdir(const char *dir);

/* A migration event: @detail "start", "pass 1 BYTES", "complete",
 * "abort REASON". */
void xs_event(vsm_ctx *ctx, const char *datastore, const char *container,
	      const char *detail);

#endif /* VSM_CKPT_XFER_H */
