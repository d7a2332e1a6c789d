/*
 * What every vsmctl command file shares: the error exit, JSON output,
 * container lookup by "NAME" or "DATASTORE/NAME", sizes for people and the
 * progress bar of long copies. Public API only.
 */
#ifndef VSMCTL_UTIL_H
#define VSMCTL_UTIL_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include <vsm/vsm.h>

/* Exit statuses (man vsmctl): a command that did its work, one the
 * library refused or failed, a command line that could not be read. */
#define VSMCTL_EXIT_OK 0
#define VSMCTL_EXIT_FAILED 1
#define VSMCTL_EXIT_USAGE 2

/* What the global options asked for: errors as JSON on stdout too
 * (--json), no progress bars (--quiet). */
void vsmctl_set_output(int json, int quiet);
/* Print "vsmctl: <the library's last message>" on stderr, and with
 * --json {"error":{"code","name","message"}} on stdout; returns 1, the
 * exit status of a failed command. */
int vsmctl_fail(void);
/* A command line that could not be read: @message on stderr, then
 * @usage (or, with --json, the error as JSON on stdout); returns 2. */
int vsmctl_usage_fail(const char *message, const char *usage);
/* Print @o pretty (slashes unescaped) on stdout and free it. */
void vsmctl_print_json(json_object *o);
/* Container CONTAINER or DATASTORE/CONTAINER. */
int vsmctl_find_container(vsm_container **out, vsm_ctx *ctx, const char *spec);
/* @n bytes as "1.5 GiB". */
void vsmctl_human(char *buf, size_t size, uint64_t n);
/* A --timeout in seconds (0 < s <= 3600, fractions allowed) as
 * milliseconds (at least 1); -1 when @s is not such a number. */
int vsmctl_timeout_ms(const char *s, unsigned int *out);
/* vsm_progress_fn drawing a bar on stderr when it is a terminal and
 * --quiet was not given (nothing otherwise); @payload is the
 * operation's name, a const char *. */
int vsmctl_progress(uint64_t done, uint64_t total, void *payload);

#endif
