/* tz.h — IANA time zones without TZ: each zone's TZif file (RFC 8536) is read once into a
 * transition table, and conversions are arithmetic on that table.
 *
 * Owns:    the zone tables; kmtz_get builds one per zone on first use and keeps it for the
 *          life of the process, so the pointer it returns never dangles and is never freed by
 *          the caller.
 * Threads: every function is safe from any thread. Conversions only read an immutable table;
 *          kmtz_get takes a lock only while it builds a table the first time. Nothing here
 *          reads or writes TZ or calls tzset, localtime or mktime.
 * Fails:   kmtz_get returns NULL for a name that is not a zone (not in the tz database, not a
 *          TZif file, or malformed).
 *
 * Zone files come from $TZDIR, else /usr/share/zoneinfo. Times past the file's last
 * transition follow its footer rule (a POSIX TZ string such as "EST5EDT,M3.2.0,M11.1.0");
 * times before its first transition use its first time type, as RFC 8536 says. "UTC" needs no
 * file.
 */
#ifndef KM_TZ_H
#define KM_TZ_H

#include <stdint.h>

typedef struct kmtz kmtz;

/* The table of zone `name` (e.g. "America/New_York"), built on first use; NULL when unknown. */
const kmtz *kmtz_get(const char *name);

/* Seconds east of UTC at instant t (unix seconds). */
int kmtz_offset(const kmtz *z, int64_t t);

/* The instant whose local wall time is `wall` (local seconds since 1970-01-01 00:00, as if the
 * local clock were UTC). A wall time repeated by a backward shift gives its earlier instant; one
 * skipped by a forward shift is read with the offset in force before the shift (02:30 on a New
 * York spring-forward day is 07:30 UTC), as mktime does with tm_isdst = -1. */
int64_t kmtz_wall_to_utc(const kmtz *z, int64_t wall);

/* The local wall time of instant t (the inverse for times that are not skipped). */
int64_t kmtz_utc_to_wall(const kmtz *z, int64_t t);

#endif
