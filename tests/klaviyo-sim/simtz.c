/* simtz.c — timezone transition tables built from the system tz database via dates.h. */
#include "simtz.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ZONES 64
#define DAY 86400
#define STEP (7 * DAY)   /* probe weekly: offset changes are months apart */

struct simtz {
    char     name[72];
    size_t   n;       /* number of offset periods */
    int64_t *from;    /* from[i]: first instant of period i (from[0] is the table start) */
    int     *off;     /* off[i]: seconds east of UTC during period i */
};

static pthread_mutex_t zones_lock = PTHREAD_MUTEX_INITIALIZER;
static simtz          *zones[MAX_ZONES];
static size_t          zone_count;

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* Offset at t through the slow, exact path (TZ + localtime). */
static int
probe(const char *tz, int64_t t)
{
    kmday day;
    int   sec;

    if (kmdate_utc_to_local(tz, (time_t)t, &day, &sec, NULL) != KM_OK)
        return 0;
    return (int)((int64_t)day * DAY + sec - t);
}

static void
push(simtz *z, size_t *cap, int64_t from, int off)
{
    if (z->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        z->from = km_xrealloc(z->from, *cap * sizeof(*z->from));
        z->off = km_xrealloc(z->off, *cap * sizeof(*z->off));
    }
    z->from[z->n] = from;
    z->off[z->n] = off;
    z->n++;
}

static simtz *
build(const char *tz)
{
    simtz  *z = km_xcalloc(1, sizeof(*z));
    size_t  cap = 0;
    int64_t start = (int64_t)kmdate_from_ymd(2000, 1, 1) * DAY;
    int64_t end = (int64_t)kmdate_from_ymd(2045, 1, 1) * DAY;
    int     cur = probe(tz, start);

    km_strlcpy(z->name, tz, sizeof(z->name));
    push(z, &cap, start, cur);
    for (int64_t t = start + STEP; t <= end; t += STEP) {
        int o = probe(tz, t);
        int64_t lo, hi;

        if (o == cur)
            continue;
        /* the change happened in (t - STEP, t]: find its first second */
        lo = t - STEP;
        hi = t;
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (probe(tz, mid) == cur)
                lo = mid;
            else
                hi = mid;
        }
        push(z, &cap, hi, o);
        cur = o;
    }
    return z;
}

const simtz *
simtz_get(const char *tz)
{
    simtz *z = NULL;

    if (!tz || !kmdate_tz_valid(tz) || strlen(tz) >= sizeof(z->name))
        return NULL;
    pthread_mutex_lock(&zones_lock);
    for (size_t i = 0; i < zone_count; i++) {
        if (strcmp(zones[i]->name, tz) == 0) {
            z = zones[i];
            goto out;
        }
    }
    z = build(tz);
    if (zone_count < MAX_ZONES)
        zones[zone_count++] = z;
    else {
        /* more zones than expected: replace the newest one; tables are never freed while a
         * caller may hold them, so the old one stays allocated (a bounded leak by design) */
        zones[MAX_ZONES - 1] = z;
    }
out:
    pthread_mutex_unlock(&zones_lock);
    return z;
}

const char *
simtz_name(const simtz *z)
{
    return z->name;
}

int
simtz_offset(const simtz *z, int64_t t)
{
    size_t lo = 0, hi = z->n;

    /* the last period whose start is <= t (period 0 also covers everything before it) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->from[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->off[lo];
}

int64_t
simtz_local_to_utc(const simtz *z, kmday day, int sec)
{
    int64_t local = (int64_t)day * DAY + sec;
    /* offsets on either side of any transition near this wall time (transitions are months
     * apart, offsets within +-14 h) */
    int     ob = simtz_offset(z, local - 2 * DAY);
    int     oa = simtz_offset(z, local + 2 * DAY);
    int64_t tb = local - ob, ta = local - oa;
    int     vb = simtz_offset(z, tb) == ob, va = simtz_offset(z, ta) == oa;

    if (vb && va)
        return tb < ta ? tb : ta;
    if (va)
        return ta;
    return tb;   /* valid before, or skipped: read with the offset before the shift */
}

void
simtz_utc_to_local(const simtz *z, int64_t t, kmday *day, int *sec)
{
    int64_t local = t + simtz_offset(z, t);
    int64_t d = floor_div(local, DAY);

    *day = (kmday)d;
    *sec = (int)(local - d * DAY);
}

static void
format_parts(kmday day, int sec, int off, char out[32])
{
    int  y, m, d;
    char sign = off < 0 ? '-' : '+';
    int  a = off < 0 ? -off : off;

    char buf[80];

    kmdate_to_ymd(day, &y, &m, &d);
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", y, m, d, sec / 3600,
             sec / 60 % 60, sec % 60, sign, a / 3600 % 100, a / 60 % 60);
    km_strlcpy(out, buf, 32);
}

void
simtz_format_local(const simtz *z, int64_t t, char out[32])
{
    kmday day;
    int   sec;

    simtz_utc_to_local(z, t, &day, &sec);
    format_parts(day, sec, simtz_offset(z, t), out);
}

void
simtz_format_wall(const simtz *z, kmday day, int sec, char out[32])
{
    int64_t t = simtz_local_to_utc(z, day, sec);

    format_parts(day, sec, (int)((int64_t)day * DAY + sec - t), out);
}

void
simtz_format_utc(int64_t t, char out[32])
{
    int64_t d = floor_div(t, DAY);

    format_parts((kmday)d, (int)(t - d * DAY), 0, out);
}
