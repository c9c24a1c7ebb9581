/* simtz.h — the simulator's time zones: common/base/tz.h's tables by name, and formatting.
 *
 * Owns:    nothing: tables live for the process (tz.h), and so do the simtz entries.
 * Threads: simtz_get takes a lock; the other functions only read a table.
 * Fails:   simtz_get returns NULL for a name that is not in the tz database (or past its
 *          64 zones).
 */
#ifndef SIM_TZ_H
#define SIM_TZ_H

#include "dates.h"

#include <stdint.h>

typedef struct simtz simtz;

/* The table for zone `tz` (IANA name, legacy aliases included), built on first use and cached
 * for the life of the process; NULL when the zone is unknown. */
const simtz *simtz_get(const char *tz);

/* The zone's name as given to simtz_get. */
const char *simtz_name(const simtz *z);

/* Seconds east of UTC at instant t (unix seconds). */
int simtz_offset(const simtz *z, int64_t t);

/* The instant of local wall time `day` + `sec` seconds. A time repeated by a backward shift
 * gives its earlier instant; a time skipped by a forward shift is read with the offset in force
 * before the shift (02:30 on a New York spring-forward day is 07:30 UTC), as mktime does. */
int64_t simtz_local_to_utc(const simtz *z, kmday day, int sec);

/* The local day and second of the day of instant t. */
void simtz_utc_to_local(const simtz *z, int64_t t, kmday *day, int *sec);

/* Write instant t as local time with its offset, "2025-03-03T00:00:00-05:00" (26 bytes). */
void simtz_format_local(const simtz *z, int64_t t, char out[32]);

/* Write local wall time `day` + `sec` with the offset that makes it name the instant
 * simtz_local_to_utc gives, "2025-03-09T02:00:00-05:00": unlike formatting that instant, a
 * wall time skipped by a forward shift keeps its own hour instead of repeating the next. */
void simtz_format_wall(const simtz *z, kmday day, int sec, char out[32]);

/* Write instant t in UTC, "2025-03-03T05:00:00+00:00". */
void simtz_format_utc(int64_t t, char out[32]);

#endif
