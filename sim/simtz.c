/* simtz.c — the simulator's zones: common/base/tz.h's transition tables, and their formatting. */
#include "simtz.h"
#include "tz.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ZONES 64
#define DAY 86400

struct simtz {
    char        name[72];
    const kmtz *tz;
};

static pthread_mutex_t zones_lock = PTHREAD_MUTEX_INITIALIZER;
static simtz           zones[MAX_ZONES];
static size_t          zone_count;

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

const simtz *
simtz_get(const char *tz)
{
    const kmtz *k = kmtz_get(tz);
    simtz      *z = NULL;

    if (!k || strlen(tz) >= sizeof(z->name))
        return NULL;
    pthread_mutex_lock(&zones_lock);
    for (size_t i = 0; i < zone_count && !z; i++)
        if (zones[i].tz == k)
            z = &zones[i];
    if (!z && zone_count < MAX_ZONES) {
        z = &zones[zone_count++];
        km_strlcpy(z->name, tz, sizeof(z->name));
        z->tz = k;
    }
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
    return kmtz_offset(z->tz, t);
}

int64_t
simtz_local_to_utc(const simtz *z, kmday day, int sec)
{
    return kmtz_wall_to_utc(z->tz, (int64_t)day * DAY + sec);
}

void
simtz_utc_to_local(const simtz *z, int64_t t, kmday *day, int *sec)
{
    int64_t local = kmtz_utc_to_wall(z->tz, t);
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
