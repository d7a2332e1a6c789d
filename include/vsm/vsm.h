/*
 * libvsm - virtual storage manager for virtual machines.
 * Umbrella header for callers; backend authors add <vsm/backend.h>.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_VSM_H
#define VSM_VSM_H

#include "common.h"
#include "errors.h"
#include "version.h"
#include "context.h"
#include "inventory.h"
#include "container.h"
#include "events.h"
#include "image.h"
#include "handover.h"
#include "lease.h"
#include "checkpoint.h"
#include "migrate.h"
#include "transfer.h"
#include "check.h"
#include "placement.h"
#include "backup.h"
#include "group.h"
#include "recovery.h"
#include "workflow.h"

#endif /* VSM_VSM_H */
