/*
 * Private interface of group backups (gbackup.c) and recovery
 * (grecover.c): the group backup manifest, DIR/GROUP.POINT.group.json.
 */
#ifndef VSM_GBACKUP_H
#define VSM_GBACKUP_H

#define GB_FORMAT "libvsm-group-backup"
#define GB_VERSION 1
#define GB_SUFFIX ".group.json"

#endif /* VSM_GBACKUP_H */
