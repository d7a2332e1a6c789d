/*
 * The libvirt hypervisor driver's block copy (hypervisor ops version 2):
 * virDomainBlockCopy of a running domain's disk into a destination the
 * caller made, readiness from libvirt's BLOCK_JOB_2 READY event, pivot or
 * abort with virDomainBlockJobAbort, and a disk's source from the live
 * XML.
 *
 * A job keeps its own connection for its whole life: the event callback
 * is registered on it before the copy starts, so that no READY event can
 * come before anyone listens. Events run on the backend's event loop
 * thread (lv-conn.c), which the job holds a reference on.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "lv-int.h"

#define WHO "libvirt hypervisor driver"

enum { JOB_RUNNING, JOB_READY, JOB_FAILED, JOB_CANCELED, JOB_COMPLETED };

struct vsm_hv_copy {
	virConnectPtr conn;
	virDomainPtr dom;
	char *domain, *disk;
	int cb_id;
	bool loop_ref;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state;  /* JOB_*, under @lock */
	int refs;   /* the caller's and the event registration's */
};

static void job_unref(void *opaque)
{
	struct vsm_hv_copy *j = opaque;
	int left;

	pthread_mutex_lock(&j->lock);
	left = --j->refs;
	pthread_mutex_unlock(&j->lock);
	if (left)
		return;
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->cond);
	free(j->domain);
	free(j->disk);
	free(j);
}

static void on_block_job(virConnectPtr conn, virDomainPtr dom, const char *disk, int type,
			 int status, void *opaque)
{
	struct vsm_hv_copy *j = opaque;

	(void)conn;
	(void)dom;
	if (type != VIR_DOMAIN_BLOCK_JOB_TYPE_COPY || !disk || strcmp(disk, j->disk) != 0)
		return;
	pthread_mutex_lock(&j->lock);
	switch (status) {
	case VIR_DOMAIN_BLOCK_JOB_READY:
		if (j->state == JOB_RUNNING)
			j->state = JOB_READY;
		break;
	case VIR_DOMAIN_BLOCK_JOB_FAILED:
		j->state = JOB_FAILED;
		break;
	case VIR_DOMAIN_BLOCK_JOB_CANCELED:
		j->state = JOB_CANCELED;
		break;
	case VIR_DOMAIN_BLOCK_JOB_COMPLETED:
		j->state = JOB_COMPLETED;
		break;
	default:
		break;
	}
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

/* Release what a job holds; its memory goes with the last reference. */
static void job_close(struct vsm_hv_copy *j)
{
	if (j->cb_id >= 0 && virConnectDomainEventDeregisterAny(j->conn, j->cb_id) < 0)
		virResetLastError();
	j->cb_id = -1;
	if (j->dom)
		virDomainFree(j->dom);
	if (j->conn)
		virConnectClose(j->conn);
	if (j->loop_ref)
		lv_loop_unref();
	j->dom = NULL;
	j->conn = NULL;
	j->loop_ref = false;
	job_unref(j);
}

/* The destination <disk> for virDomainBlockCopy: @xml's root element
 * with only its <source> and <driver>; the rest of a locator's disk
 * (target, bus, backing chain, address) is the domain's business or is
 * read from the images themselves. */
static int dest_xml(char **out, const char *domain, const char *xml)
{
	xmlDocPtr doc;
	xmlNodePtr root, n, next;
	xmlChar *buf = NULL;
	int len = 0, rc = 0;

	*out = NULL;
	doc = xmlReadMemory(xml, (int)strnlen(xml, 1 << 24), NULL, NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc || !(root = xmlDocGetRootElement(doc)) ||
	    strcmp((const char *)root->name, "disk") != 0 || doc->intSubset) {
		xmlFreeDoc(doc);
		return vsm_error_set(VSM_EINVAL, "domain '%s': the copy's destination is not one "
				     "<disk> element", domain);
	}
	for (n = root->children; n; n = next) {
		next = n->next;
		if (n->type == XML_ELEMENT_NODE && (!strcmp((const char *)n->name, "source") ||
						    !strcmp((const char *)n->name, "driver")))
			continue;
		xmlUnlinkNode(n);
		xmlFreeNode(n);
	}
	xmlDocDumpMemory(doc, &buf, &len);
	if (!buf || !(*out = strndup((const char *)buf, (size_t)len)))
		rc = vsm_error_set(VSM_ENOMEM, "out of memory");
	xmlFree(buf);
	xmlFreeDoc(doc);
	return rc;
}

int lv_hv_copy_start(vsm_hv_copy **out, const char *uri, const char *domain, const char *disk,
		     const char *dest, unsigned int flags)
{
	struct vsm_hv_copy *j;
	unsigned int vflags = 0;
	char *xml = NULL;
	int rc;

	*out = NULL;
	if (flags & ~(VSM_HV_COPY_SHALLOW | VSM_HV_COPY_REUSE | VSM_HV_COPY_SYNC))
		return vsm_error_set(VSM_EINVAL, "domain '%s': unknown block copy flags 0x%x",
				     domain, flags);
	if ((rc = dest_xml(&xml, domain, dest)) < 0)
		return rc;
	if (!(j = calloc(1, sizeof(*j))) || !(j->domain = strdup(domain)) ||
	    !(j->disk = strdup(disk))) {
		if (j)
			free(j->domain);
		free(j);
		free(xml);
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&j->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&j->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	j->refs = 1;
	j->cb_id = -1;
	j->state = JOB_RUNNING;
	if ((rc = lv_loop_ref(&j->loop_ref)) < 0 || (rc = lv_connect(&j->conn, uri, WHO)) < 0)
		goto fail;
	if (!(j->dom = virDomainLookupByName(j->conn, domain))) {
		rc = lv_error("domain '%s'", domain);
		goto fail;
	}
	/* Listen first: the READY event may come as soon as the copy starts. */
	j->refs++;
	j->cb_id = virConnectDomainEventRegisterAny(j->conn, j->dom,
						    VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
						    VIR_DOMAIN_EVENT_CALLBACK(on_block_job), j,
						    job_unref);
	if (j->cb_id < 0) {
		j->refs--;
		rc = lv_error("domain '%s': cannot watch its block jobs", domain);
		goto fail;
	}
	if (flags & VSM_HV_COPY_SHALLOW)
		vflags |= VIR_DOMAIN_BLOCK_COPY_SHALLOW;
	if (flags & VSM_HV_COPY_REUSE)
		vflags |= VIR_DOMAIN_BLOCK_COPY_REUSE_EXT;
	if (flags & VSM_HV_COPY_SYNC)
		vflags |= VIR_DOMAIN_BLOCK_COPY_SYNCHRONOUS_WRITES;
	if (virDomainBlockCopy(j->dom, disk, xml, NULL, 0, vflags) < 0) {
		/* Older libvirt copies a persistent domain's disk only as a job
		 * that does not outlive the daemon: ask for that. */
		if (lv_last_code() != VIR_ERR_OPERATION_INVALID ||
		    virDomainBlockCopy(j->dom, disk, xml, NULL, 0,
				       vflags | VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB) < 0) {
			rc = lv_error("domain '%s': cannot start copying disk '%s'", domain, disk);
			goto fail;
		}
		virResetLastError();
	}
	free(xml);
	*out = j;
	return 0;
fail:
	free(xml);
	job_close(j);
	return rc;
}

static void progress(struct vsm_hv_copy *j, uint64_t *cur, uint64_t *end)
{
	virDomainBlockJobInfo info;

	if (!cur && !end)
		return;
	memset(&info, 0, sizeof(info));
	if (virDomainGetBlockJobInfo(j->dom, j->disk, &info, 0) < 0)
		virResetLastError();
	if (cur)
		*cur = info.cur;
	if (end)
		*end = info.end;
}

int lv_hv_copy_wait(vsm_hv_copy *j, unsigned int timeout_ms, uint64_t *cur, uint64_t *end)
{
	struct timespec until;
	int st;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&j->lock);
	while (j->state == JOB_RUNNING &&
	       pthread_cond_timedwait(&j->cond, &j->lock, &until) != ETIMEDOUT)
		;
	st = j->state;
	pthread_mutex_unlock(&j->lock);
	progress(j, cur, end);
	switch (st) {
	case JOB_READY:
		return 1;
	case JOB_RUNNING:
		return 0;
	case JOB_FAILED:
		return vsm_error_set(VSM_EIO, "domain '%s': the copy of disk '%s' failed",
				     j->domain, j->disk);
	default:
		return vsm_error_set(VSM_ESTATE, "domain '%s': the copy of disk '%s' ended "
				     "before it was ready", j->domain, j->disk);
	}
}

int lv_hv_copy_end(vsm_hv_copy *j, int pivot)
{
	int rc = 0, st;

	pthread_mutex_lock(&j->lock);
	st = j->state;
	pthread_mutex_unlock(&j->lock);
	if (pivot) {
		if (st != JOB_READY)
			rc = vsm_error_set(VSM_ESTATE, "domain '%s': disk '%s' is not ready to "
					   "switch over", j->domain, j->disk);
		/* Synchronous: returns once the disk reads the destination. */
		else if (virDomainBlockJobAbort(j->dom, j->disk,
						VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT) < 0)
			rc = lv_error("domain '%s': cannot switch disk '%s' over", j->domain,
				      j->disk);
	} else if (st == JOB_RUNNING || st == JOB_READY) {
		if (virDomainBlockJobAbort(j->dom, j->disk, 0) < 0) {
			/* Ended meanwhile: what an abort wanted. */
			if (lv_last_code() == VIR_ERR_OPERATION_INVALID)
				virResetLastError();
			else
				rc = lv_error("domain '%s': cannot abort the copy of disk '%s'",
					      j->domain, j->disk);
		}
	}
	job_close(j);
	return rc;
}

int lv_hv_copy_cancel(const char *uri, const char *domain, const char *disk)
{
	virConnectPtr conn;
	virDomainPtr dom;
	int rc;

	if ((rc = lv_connect(&conn, uri, WHO)) < 0)
		return rc;
	if (!(dom = virDomainLookupByName(conn, domain))) {
		if (lv_last_code() == VIR_ERR_NO_DOMAIN) { /* gone, and its jobs with it */
			virResetLastError();
		} else {
			rc = lv_error("domain '%s'", domain);
		}
		virConnectClose(conn);
		return rc;
	}
	if (virDomainBlockJobAbort(dom, disk, 0) < 0) {
		if (lv_last_code() == VIR_ERR_OPERATION_INVALID ||
		    lv_last_code() == VIR_ERR_INVALID_ARG) /* no job, or no such disk */
			virResetLastError();
		else
			rc = lv_error("domain '%s': cannot abort the copy of disk '%s'", domain,
				      disk);
	}
	virDomainFree(dom);
	virConnectClose(conn);
	return rc;
}

/* The source attribute of @disk's <source>: file, dev, name or volume. */
static char *source_of(xmlNodePtr disk)
{
	static const char *const attrs[] = { "file", "dev", "name", "volume", NULL };
	xmlNodePtr n;
	size_t i;

	for (n = disk->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "source"))
			continue;
		for (i = 0; attrs[i]; i++) {
			xmlChar *v = xmlGetProp(n, (const xmlChar *)attrs[i]);

			if (v) {
				char *s = strdup((const char *)v);

				xmlFree(v);
				return s;
			}
		}
	}
	return NULL;
}

static bool target_is(xmlNodePtr disk, const char *want)
{
	xmlNodePtr n;

	for (n = disk->children; n; n = n->next) {
		xmlChar *dev;
		bool same;

		if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "target"))
			continue;
		if (!(dev = xmlGetProp(n, (const xmlChar *)"dev")))
			return false;
		same = !strcmp((const char *)dev, want);
		xmlFree(dev);
		return same;
	}
	return false;
}

int lv_hv_disk_source(const char *uri, const char *domain, const char *disk, char **source)
{
	virConnectPtr conn;
	virDomainPtr dom;
	xmlDocPtr doc = NULL;
	xmlNodePtr root, devs, n;
	char *xml = NULL;
	int rc;

	*source = NULL;
	if ((rc = lv_connect(&conn, uri, WHO)) < 0)
		return rc;
	if (!(dom = virDomainLookupByName(conn, domain))) {
		rc = lv_error("domain '%s'", domain);
		virConnectClose(conn);
		return rc;
	}
	if (!(xml = virDomainGetXMLDesc(dom, 0))) {
		rc = lv_error("domain '%s': cannot get its XML", domain);
		goto out;
	}
	doc = xmlReadMemory(xml, (int)strlen(xml), NULL, NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	rc = 1; /* not found yet */
	if (!doc || !(root = xmlDocGetRootElement(doc))) {
		rc = vsm_error_set(VSM_EIO, "domain '%s': its XML does not parse", domain);
		goto out;
	}
	for (devs = root->children; devs; devs = devs->next)
		if (devs->type == XML_ELEMENT_NODE && !strcmp((const char *)devs->name, "devices"))
			break;
	for (n = devs ? devs->children : NULL; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "disk") ||
		    !target_is(n, disk))
			continue;
		if (!(*source = source_of(n)))
			rc = vsm_error_set(VSM_ENOTFOUND, "domain '%s': disk '%s' has no source",
					   domain, disk);
		else
			rc = 0;
		break;
	}
	if (rc == 1)
		rc = vsm_error_set(VSM_ENOTFOUND, "domain '%s' has no disk '%s'", domain, disk);
out:
	xmlFreeDoc(doc);
	free(xml);
	virDomainFree(dom);
	virConnectClose(conn);
	return rc;
}
