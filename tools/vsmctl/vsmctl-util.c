/*
 * Helpers shared by vsmctl's command files (vsmctl-util.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vsmctl-util.h"

static int json_errors, quiet;

void vsmctl_set_output(int json, int be_quiet)
{
	json_errors = json;
	quiet = be_quiet;
}

/* {"error":{"code":N,"name":"E...","message":"..."}} on stdout, where a
 * script that asked for --json reads the answer. */
static void print_json_error(int code, const char *message)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object();
	const char *name = vsm_error_name(code);

	json_object_object_add(e, "code", json_object_new_int(code));
	json_object_object_add(e, "name", json_object_new_string(name ? name : "EUNKNOWN"));
	json_object_object_add(e, "message", json_object_new_string(message));
	json_object_object_add(o, "error", e);
	vsmctl_print_json(o);
}

int vsmctl_fail(void)
{
	const vsm_error *e = vsm_error_last();
	const char *msg = e && e->message ? e->message : "unknown error";

	fprintf(stderr, "vsmctl: %s\n", msg);
	if (json_errors)
		print_json_error(e ? e->code : VSM_EINTERNAL, msg);
	return 1;
}

int vsmctl_usage_fail(const char *message, const char *usage)
{
	fprintf(stderr, "vsmctl: %s\n", message);
	if (json_errors)
		print_json_error(VSM_EINVAL, message);
	else
		fputs(usage, stderr);
	return 2;
}

void vsmctl_print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

int vsmctl_find_container(vsm_container **out, vsm_ctx *ctx, const char *spec)
{
	const char *slash = strchr(spec, '/');
	char ds[128];

	if (!slash)
		return vsm_container_lookup(out, ctx, NULL, spec);
	snprintf(ds, sizeof(ds), "%.*s", (int)(slash - spec), spec);
	return vsm_container_lookup(out, ctx, ds, slash + 1);
}

void vsmctl_human(char *buf, size_t size, uint64_t n)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

int vsmctl_timeout_ms(const char *s, unsigned int *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v > 0) || v > 3600)
		return -1;
	*out = (unsigned int)(v * 1000 + 0.5);
	if (!*out)
		*out = 1;
	return 0;
}

int vsmctl_progress(uint64_t done, uint64_t total, void *payload)
{
	static time_t last;
	char a[32], b[32], bar[41];
	int width = 40, fill;
	time_t now = time(NULL);

	if (quiet || !isatty(STDERR_FILENO))
		return 0;
	if (done < total && now == last)
		return 0;
	last = now;
	if (done > total)
		done = total;
	fill = total ? (int)((double)done / (double)total * width) : width;
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, '.', (size_t)(width - fill));
	bar[width] = '\0';
	vsmctl_human(a, sizeof(a), done);
	vsmctl_human(b, sizeof(b), total);
	fprintf(stderr, "\r%s [%s] %3d%% %s / %s ", (const char *)payload, bar,
		total ? (int)(done * 100 / total) : 100, a, b);
	if (done >= total)
		fputc('\n', stderr);
	return 0;
}
