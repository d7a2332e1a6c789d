/*
 * Loadable backend modules: finds "*.so" files in the module directories,
 * dlopen()s them and calls their one entry symbol, which registers
 * backends through the public vsm_backend_register(). Owns the modules'
 * handles for the context's lifetime. Only the public API and libc here:
 * a module reaches the library through the same door as any backend.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "modules.h"

struct vsm__modules {
	void **handles;
	size_t n, cap;
};

typedef int (*module_init_fn)(vsm_ctx *ctx, uint32_t abi_version);

static int only_modules(const struct dirent *e)
{
	size_t len = strlen(e->d_name);

	/* "x.so" only: not "x.so.1" (a library, not a module), not hidden. */
	return e->d_name[0] != '.' && len > 3 && !strcmp(e->d_name + len - 3, ".so");
}

static bool known(const vsm__modules *m, void *h)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->handles[i] == h)
			return true;
	return false;
}

static int keep(vsm__modules *m, void *h)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 8;
		void **grown = realloc(m->handles, cap * sizeof(*grown));

		if (!grown)
			return -1;
		m->handles = grown;
		m->cap = cap;
	}
	m->handles[m->n++] = h;
	return 0;
}

static void load_one(vsm__modules *m, vsm_ctx *ctx, const char *path,
		     vsm__modules_log_fn log)
{
	module_init_fn init;
	const vsm_error *e;
	void *h, *sym;
	int rc;

	dlerror();
	if (!(h = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
		const char *why = dlerror();

		log(ctx, VSM_LOG_WARN, "backend module '%s' not loaded: %s", path,
		    why ? why : "dlopen failed");
		return;
	}
	/* The same file reached twice (a directory listed twice, a link). */
	if (known(m, h)) {
		dlclose(h);
		return;
	}
	dlerror();
	sym = dlsym(h, VSM_BACKEND_MODULE_INIT);
	if (!sym) {
		const char *why = dlerror();

		log(ctx, VSM_LOG_WARN, "backend module '%s' not loaded: no entry symbol "
		    VSM_BACKEND_MODULE_INIT " (%s)", path, why ? why : "NULL");
		dlclose(h);
		return;
	}
	/* Once init ran, the module may have registered a table that points
	 * into it, even if it then failed: it stays loaded until the context
	 * goes, whatever init returned. */
	if (keep(m, h) < 0) {
		log(ctx, VSM_LOG_WARN, "backend module '%s' not loaded: out of memory", path);
		dlclose(h);
		return;
	}
	memcpy(&init, &sym, sizeof(init)); /* ISO C has no object-to-function cast */
	rc = init(ctx, VSM_BACKEND_MODULE_ABI);
	e = vsm_error_last();
	if (rc == -VSM_EEXISTS) {
		/* An earlier directory, or the library itself, serves it. */
		log(ctx, VSM_LOG_WARN, "backend module '%s' not used: %s", path,
		    e && e->message ? e->message : "scheme already registered");
	} else if (rc < 0) {
		log(ctx, VSM_LOG_WARN, "backend module '%s': init failed (%d): %s", path, rc,
		    e && e->message ? e->message : "no message");
	} else {
		log(ctx, VSM_LOG_DEBUG, "backend module '%s' loaded", path);
	}
}

static void load_dir(vsm__modules *m, vsm_ctx *ctx, const char *dir, bool explicit,
		     vsm__modules_log_fn log)
{
	struct dirent **names = NULL;
	int n, i;

	if ((n = scandir(dir, &names, only_modules, alphasort)) < 0) {
		/* The default directory is often absent: say so only when asked. */
		log(ctx, errno == ENOENT && !explicit ? VSM_LOG_DEBUG : VSM_LOG_WARN,
		    "backend module directory '%s' not read: %s", dir, strerror(errno));
		return;
	}
	for (i = 0; i < n; i++) {
		struct stat st;
		char *path = NULL;

		if (asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0)
			path = NULL;
		if (path && stat(path, &st) == 0 && S_ISREG(st.st_mode))
			load_one(m, ctx, path, log);
		free(path);
		free(names[i]);
	}
	free(names);
}

void vsm__modules_load(vsm__modules **out, vsm_ctx *ctx, const char *dirs,
		       const char *default_dirs, vsm__modules_log_fn log)
{
	vsm__modules *m;
	bool explicit = true;
	char *list, *dir, *save = NULL;

	*out = NULL;
	if (!dirs)
		dirs = getenv("VSM_BACKEND_DIR");
	if (!dirs) {
		dirs = default_dirs;
		explicit = false;
	}
	if (!*dirs)
		return;
	if (!(m = calloc(1, sizeof(*m))) || !(list = strdup(dirs))) {
		free(m);
		log(ctx, VSM_LOG_WARN, "backend modules not loaded: out of memory");
		return;
	}
	for (dir = strtok_r(list, ":", &save); dir; dir = strtok_r(NULL, ":", &save))
		load_dir(m, ctx, dir, explicit, log);
	free(list);
	if (!m->n) {
		vsm__modules_free(m);
		return;
	}
	*out = m;
}

void vsm__modules_free(vsm__modules *m)
{
	if (!m)
		return;
	/* Last loaded, first unloaded. */
	while (m->n)
		dlclose(m->handles[--m->n]);
	free(m->handles);
	free(m);
}
