/*
 * A backend that wraps the file backend and fails on demand, in the
 * manner of SQLite's test_vfs: tests set the knobs, then drive the public
 * API through a "fault:///DIR" datastore.
 */
#ifndef VSM_FAULT_BACKEND_H
#define VSM_FAULT_BACKEND_H

#include <vsm/backend.h>
#include <vsm/context.h>

typedef struct {
	int create_fail_at;  /* the Nth device_create (1-based) fails ... */
	int create_fail_code;/* ... with this VSM_E* code (positive) */
	int create_crash_at; /* the Nth device_create _exit()s the process after
	                      * creating the device, like a kill at that point */
	int write_fail_at;   /* the Nth bdev write fails with VSM_EIO */
	int delete_fail_at;  /* the Nth device_delete (1-based) leaves the device
	                      * in place and fails ... */
	int delete_fail_code;/* ... with this VSM_E* code (positive); VSM_ENOTFOUND
	                      * is a backend that lost track of a device it has */
	void (*delete_hook)(const char *key); /* called before each device_delete */
	int creates;         /* counters */
	int writes;
	int deploys;         /* device_deploy calls that reached the backend */
	int deletes;
} fault_config;

extern fault_config fault;

/* Register the "fault" scheme with @ctx. */
int fault_register(vsm_ctx *ctx);

#endif
