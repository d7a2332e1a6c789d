/*
 * libvsm - cross-site transfer: send a container (devices, checkpoint
 * tree, VM-state blobs) over a byte stream to a receiver with its own
 * catalog and datastore, which shares nothing with the sender. A pipe
 * (one-way) or a socket or two pipes (two-way) carries it, so ssh does
 * too. Layers the receiver already holds are not sent; a broken transfer
 * resumes where it stopped. See doc/cross-site.md for the stream format
 * and the protocol.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_TRANSFER_H
#define VSM_TRANSFER_H

#include <stdint.h>

#include "common.h"
#include "context.h"
#include "container.h"
#include "checkpoint.h" /* vsm_progress_fn */

VSM_BEGIN_DECL

/** Version of vsm_send_opts and vsm_receive_opts understood by this
 *  header. Since: 0.2 */
#define VSM_TRANSFER_OPTS_VERSION 1

/** What a send or a receive did (filled when the call succeeds).
 *  Since: 0.2 */
typedef struct {
	uint64_t bytes;            /**< stream bytes written (send) or read (receive) */
	uint64_t layers;           /**< layers the container is made of */
	uint64_t layers_skipped;   /**< not sent: the receiver holds them already */
	uint64_t sections_resumed; /**< not sent again: an earlier, broken transfer delivered them */
	uint64_t sections;         /**< sections (layers and blobs) in the stream */
	uint64_t passes;           /**< copy passes made */
} vsm_transfer_stats;

/** vsm_send_opts.flags: after the receiver has acknowledged the
 *  container (two-way channel only), destroy the source. Since: 0.2 */
#define VSM_SEND_REMOVE_SOURCE (1u << 0)

/** Settings for vsm_container_send(). Since: 0.2 */
typedef struct {
	unsigned int version;      /**< VSM_TRANSFER_OPTS_VERSION */
	/** Send only this checkpoint (the receiver makes a container whose
	 *  devices start from it, as vsm_bundle_import() of a checkpoint
	 *  bundle); NULL: the whole container. */
	const char *checkpoint;
	/** One-way channel: path of a list of the layers the receiver
	 *  holds (what vsm_receive_list_have() wrote); those are not sent.
	 *  NULL: send everything. Ignored on a two-way channel, where the
	 *  receiver answers for itself. */
	const char *have;
	/** Copy passes (at most 100); 0 or 1: one. With N > 1, passes
	 *  1..N-1 each freeze a cut of the container as a temporary
	 *  checkpoint ".xfer-K" and send what changed since the cut before;
	 *  pass N sends the container as it is then. Both sides delete the
	 *  temporary checkpoints at the end, the source also when the send
	 *  fails. Not with @checkpoint. See doc/cross-site.md. */
	unsigned int passes;
	vsm_progress_fn progress;  /**< bytes of the stream; NULL: none; non-zero cancels */
	void *payload;             /**< for @progress */
	vsm_transfer_stats *stats; /**< receives the counts; may be NULL */
	unsigned int flags;        /**< VSM_SEND_* */
} vsm_send_opts;

/** Default send settings. Since: 0.2 */
#define VSM_SEND_OPTS_INIT { VSM_TRANSFER_OPTS_VERSION, NULL, NULL, 0, NULL, NULL, NULL, 0 }

/** Settings for vsm_container_receive(). Since: 0.2 */
typedef struct {
	unsigned int version;      /**< VSM_TRANSFER_OPTS_VERSION */
	const char *name;          /**< name of the new container; NULL: the sender's */
	vsm_progress_fn progress;  /**< bytes of the stream; NULL: none; non-zero cancels */
	void *payload;             /**< for @progress */
	vsm_transfer_stats *stats; /**< receives the counts; may be NULL */
	unsigned int flags;        /**< 0 */
} vsm_receive_opts;

/** Default receive settings. Since: 0.2 */
#define VSM_RECEIVE_OPTS_INIT { VSM_TRANSFER_OPTS_VERSION, NULL, NULL, NULL, NULL, 0 }

/**
 * Send container @c (its devices, checkpoint tree and blobs; or, with
 * vsm_send_opts.checkpoint, that one checkpoint) as a stream to @out_fd.
 * With @in_fd >= 0 the channel is two-way: the receiver answers which
 * layers it holds and which sections an earlier transfer delivered, and
 * acknowledges the container at the end; with -1 it is one-way (a
 * pipe). No device of @c may be deployed. The source is kept unless
 * VSM_SEND_REMOVE_SOURCE is given (two-way only). The sender keeps a
 * snapshot of what it sends in its state directory until the transfer
 * completes, so that a new call after a broken one sends the same bytes
 * and the receiver resumes. Writing to a closed pipe raises SIGPIPE:
 * a caller that wants -VSM_EIO instead ignores that signal.
 *
 * @in_fd: the receiver's answers, or -1
 * Since: 0.2
 */
VSM_API int vsm_container_send(vsm_container *c, int out_fd, int in_fd,
			       const vsm_send_opts *opts);

/**
 * Receive a container sent by vsm_container_send() from @in_fd into
 * @datastore. With @out_fd >= 0 the channel is two-way (answers go
 * there). Every frame and section is checked; the container appears
 * only when all of it arrived and was verified, with the sender's UUID.
 * A broken stream returns -VSM_EIO (or -VSM_ECORRUPT for damaged bytes,
 * which are dropped) and keeps what was received in the state directory:
 * the next receive of the same container resumes;
 * vsm_receive_abort() discards it.
 *
 * @out: receives the new container; may be NULL
 * Since: 0.2
 */
VSM_API int vsm_container_receive(vsm_container **out, vsm_ctx *ctx, int in_fd, int out_fd,
				  const char *datastore, const vsm_receive_opts *opts);

/**
 * Write to @out_fd the list of layers @datastore holds that a sender may
 * leave out (content ID and digest per line), for vsm_send_opts.have.
 * Since: 0.2
 */
VSM_API int vsm_receive_list_have(vsm_ctx *ctx, const char *datastore, int out_fd,
				  unsigned int flags);

/**
 * Discard the partial transfer of container @uuid kept in the state
 * directory (NULL: every partial transfer). Nothing on a datastore is
 * touched: a partial transfer never is. -VSM_ENOTFOUND when there is none.
 * Since: 0.2
 */
VSM_API int vsm_receive_abort(vsm_ctx *ctx, const char *uuid, unsigned int flags);

VSM_END_DECL

#endif /* VSM_TRANSFER_H */
