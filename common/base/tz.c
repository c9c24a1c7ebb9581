/* tz.c — IANA time zones from their TZif files, without TZ (see tz.h). */
#include "tz.h"
#include "dates.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE   (1u << 20)   /* a zone file is a few KiB; refuse anything absurd */
#define MAX_TRANS  100000
#define DAY        86400

/* A POSIX TZ rule date: Jn (1-365, no Feb 29), n (0-365) or Mm.w.d, at `secs` local time. */
struct rdate {
    char kind;                  /* 'J', 'N' or 'M' */
    int  n, m, w, d;
    int  secs;
};

/* The footer: "STD offset [DST [offset] [,start[/time],end[/time]]]". Offsets are east. */
struct rule {
    int          std_off, dst_off;
    int          has_dst;
    struct rdate start, end;
};

struct kmtz {
    struct kmtz *next;          /* the cache's list */
    char        *name;
    size_t       n;             /* transitions */
    int64_t     *at;            /* transition instants, ascending */
    int32_t     *off;           /* the offset from each transition on */
    int32_t      first_off;     /* before the first transition: time type 0 */
    int          has_rule;
    struct rule  rule;          /* past the last transition, when has_rule */
};

static _Atomic(struct kmtz *) zones;
static pthread_mutex_t        zones_lock = PTHREAD_MUTEX_INITIALIZER;

/* --- the footer: a POSIX TZ string ----------------------------------------------------- */

/* A zone abbreviation: 3+ letters, or <...> holding letters, digits, '+' and '-'. */
static const char *
parse_abbr(const char *p)
{
    const char *s = p;

    if (*p == '<') {
        for (p++; *p && *p != '>'; p++)
            ;
        return *p == '>' && p - s >= 4 ? p + 1 : NULL;
    }
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] with hours up to `max_h`; *out in seconds (sign applied). */
static const char *
parse_hms(const char *p, int max_h, int *out)
{
    int sign = 1, h = 0, m = 0, s = 0, digits = 0;

    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    while (*p >= '0' && *p <= '9' && digits < 3) {
        h = h * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || h > max_h)
        return NULL;
    for (int part = 0; part < 2 && *p == ':'; part++) {
        int v = 0, k = 0;

        for (p++; *p >= '0' && *p <= '9' && k < 2; p++, k++)
            v = v * 10 + (*p - '0');
        if (k == 0 || v > 59)
            return NULL;
        if (part == 0)
            m = v;
        else
            s = v;
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return p;
}

static const char *
parse_num(const char *p, int lo, int hi, int *out)
{
    int v = 0, k = 0;

    for (; *p >= '0' && *p <= '9' && k < 4; p++, k++)
        v = v * 10 + (*p - '0');
    if (k == 0 || v < lo || v > hi)
        return NULL;
    *out = v;
    return p;
}

static const char *
parse_rdate(const char *p, struct rdate *r)
{
    memset(r, 0, sizeof(*r));
    r->secs = 7200;
    if (*p == 'J') {
        r->kind = 'J';
        p = parse_num(p + 1, 1, 365, &r->n);
    } else if (*p == 'M') {
        r->kind = 'M';
        p = parse_num(p + 1, 1, 12, &r->m);
        if (p && *p == '.')
            p = parse_num(p + 1, 1, 5, &r->w);
        else
            p = NULL;
        if (p && *p == '.')
            p = parse_num(p + 1, 0, 6, &r->d);
        else
            p = NULL;
    } else {
        r->kind = 'N';
        p = parse_num(p, 0, 365, &r->n);
    }
    if (p && *p == '/')
        p = parse_hms(p + 1, 167, &r->secs);    /* RFC 8536: -167..167 hours */
    return p;
}

/* Parse the footer; 0 when it is a rule this module understands. */
static int
parse_rule(const char *p, struct rule *r)
{
    int west;

    memset(r, 0, sizeof(*r));
    p = parse_abbr(p);
    if (!p || !(p = parse_hms(p, 24, &west)))
        return -1;
    r->std_off = -west;                 /* POSIX offsets are west of Greenwich */
    if (!*p)
        return 0;
    if (!(p = parse_abbr(p)))
        return -1;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*p && *p != ',') {
        if (!(p = parse_hms(p, 24, &west)))
            return -1;
        r->dst_off = -west;
    }
    if (*p != ',')
        return -1;                      /* no rule: the tz database always writes one */
    if (!(p = parse_rdate(p + 1, &r->start)) || *p != ',')
        return -1;
    if (!(p = parse_rdate(p + 1, &r->end)))
        return -1;
    return *p ? -1 : 0;
}

/* The day (days since 1970-01-01) a rule date falls on in year y. */
static kmday
rdate_day(const struct rdate *r, int y)
{
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    if (r->kind == 'J')                 /* 1-365, February 29 never counted */
        return kmdate_from_ymd(y, 1, 1) + r->n - 1 + (leap && r->n >= 60 ? 1 : 0);
    if (r->kind == 'N')                 /* 0-365, February 29 counted */
        return kmdate_from_ymd(y, 1, 1) + r->n;
    {
        kmday first = kmdate_from_ymd(y, r->m, 1);
        int   sunday_wday = (kmdate_weekday(first) + 1) % 7;   /* 0 = Sunday */
        int   day = 1 + (r->d - sunday_wday + 7) % 7 + (r->w - 1) * 7;

        while (day > kmdate_days_in_month(y, r->m))
            day -= 7;                   /* week 5: the last such weekday */
        return first + day - 1;
    }
}

static int
rule_offset(const struct rule *r, int64_t t)
{
    int     y, m, d;
    int64_t start, end;

    if (!r->has_dst)
        return r->std_off;
    kmdate_to_ymd((kmday)((t + r->std_off) / DAY - ((t + r->std_off) % DAY < 0)), &y, &m, &d);
    /* the change to DST happens at a local standard time, the change back at a DST time */
    start = (int64_t)rdate_day(&r->start, y) * DAY + r->start.secs - r->std_off;
    end = (int64_t)rdate_day(&r->end, y) * DAY + r->end.secs - r->dst_off;
    if (start < end)
        return t >= start && t < end ? r->dst_off : r->std_off;
    /* the southern hemisphere: DST spans the new year */
    return t >= end && t < start ? r->std_off : r->dst_off;
}

/* --- the TZif file --------------------------------------------------------------------- */

static int64_t
be(const unsigned char *p, int bytes)
{
    uint64_t v = 0;

    for (int i = 0; i < bytes; i++)
        v = (v << 8) | p[i];
    if (bytes == 4)
        return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

/* Parse a TZif image into z; 0 on success. */
static int
parse_tzif(const unsigned char *b, size_t len, struct kmtz *z)
{
    size_t   pos = 0, cnt[6], need;
    int      tbytes = 4, version;
    int32_t *types = NULL;
    int      rc = -1;

    if (len < 44 || memcmp(b, "TZif", 4) != 0)
        return -1;
    version = b[4];
    for (int pass = 0; pass < 2; pass++) {
        if (len - pos < 44 || memcmp(b + pos, "TZif", 4) != 0)
            return -1;
        for (int i = 0; i < 6; i++)
            cnt[i] = (size_t)be(b + pos + 20 + 4 * i, 4) & 0xffffffffu;
        /* isutcnt isstdcnt leapcnt timecnt typecnt charcnt */
        if (cnt[3] > MAX_TRANS || cnt[4] == 0 || cnt[4] > 256)
            return -1;
        need = cnt[3] * (size_t)tbytes + cnt[3] + cnt[4] * 6 + cnt[5] +
               cnt[2] * (size_t)(tbytes + 4) + cnt[1] + cnt[0];
        pos += 44;
        if (len - pos < need)
            return -1;
        if (version >= '2' && pass == 0) {
            pos += need;                /* the 32-bit block: the 64-bit one follows */
            tbytes = 8;
            continue;
        }
        break;
    }
    {
        const unsigned char *tt = b + pos;
        const unsigned char *ix = tt + cnt[3] * (size_t)tbytes;
        const unsigned char *ti = ix + cnt[3];

        types = km_xcalloc(cnt[4], sizeof(*types));
        for (size_t i = 0; i < cnt[4]; i++)
            types[i] = (int32_t)be(ti + 6 * i, 4);
        z->first_off = types[0];
        z->n = cnt[3];
        z->at = km_xcalloc(z->n ? z->n : 1, sizeof(*z->at));
        z->off = km_xcalloc(z->n ? z->n : 1, sizeof(*z->off));
        for (size_t i = 0; i < z->n; i++) {
            if (ix[i] >= cnt[4] || (i > 0 && be(tt + i * (size_t)tbytes, tbytes) <= z->at[i - 1]))
                goto out;
            z->at[i] = be(tt + i * (size_t)tbytes, tbytes);
            z->off[i] = types[ix[i]];
        }
        pos += need;
    }
    if (version >= '2' && pos < len && b[pos] == '\n') {
        const char *nl = memchr(b + pos + 1, '\n', len - pos - 1);

        if (nl && nl > (const char *)b + pos + 1) {
            char *footer = km_xstrndup((const char *)b + pos + 1,
                                       (size_t)(nl - ((const char *)b + pos + 1)));

            z->has_rule = parse_rule(footer, &z->rule) == 0;
            free(footer);
        }
    }
    rc = 0;
out:
    free(types);
    return rc;
}

/* The same characters a zone name may hold in the tz database; no way out of TZDIR. */
static int
name_ok(const char *name)
{
    if (!name || !*name || strlen(name) > 64 || name[0] == '/' || strstr(name, ".."))
        return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+'))
            return 0;
    }
    return 1;
}

static struct kmtz *
load(const char *name)
{
    const char    *dir = getenv("TZDIR");
    char           path[512];
    unsigned char *buf = NULL;
    size_t         len = 0;
    struct kmtz   *z = km_xcalloc(1, sizeof(*z));
    FILE          *f;

    z->name = km_xstrdup(name);
    if (strcmp(name, "UTC") == 0)
        return z;                       /* no transitions, offset 0 */
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    f = fopen(path, "rb");
    if (f) {
        buf = km_xmalloc(MAX_FILE);
        len = fread(buf, 1, MAX_FILE, f);
        fclose(f);
    }
    if (!buf || len == 0 || len >= MAX_FILE || parse_tzif(buf, len, z) != 0) {
        free(buf);
        free(z->at);
        free(z->off);
        free(z->name);
        free(z);
        return NULL;
    }
    free(buf);
    return z;
}

static struct kmtz *
find(struct kmtz *z, const char *name)
{
    for (; z; z = z->next)
        if (strcmp(z->name, name) == 0)
            return z;
    return NULL;
}

const kmtz *
kmtz_get(const char *name)
{
    struct kmtz *z;

    if (!name_ok(name))
        return NULL;
    z = find(atomic_load(&zones), name);
    if (z)
        return z;
    pthread_mutex_lock(&zones_lock);
    z = find(atomic_load(&zones), name);
    if (!z) {
        z = load(name);
        if (z) {
            z->next = atomic_load(&zones);
            atomic_store(&zones, z);
        }
    }
    pthread_mutex_unlock(&zones_lock);
    return z;
}

/* --- conversions ----------------------------------------------------------------------- */

int
kmtz_offset(const kmtz *z, int64_t t)
{
    size_t lo = 0, hi;

    if (z->n == 0)
        return z->has_rule ? rule_offset(&z->rule, t) : z->first_off;
    if (t < z->at[0])
        return z->first_off;
    if (t >= z->at[z->n - 1] && z->has_rule)
        return rule_offset(&z->rule, t);
    /* the last transition at or before t */
    hi = z->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (z->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->off[lo];
}

int64_t
kmtz_utc_to_wall(const kmtz *z, int64_t t)
{
    return t + kmtz_offset(z, t);
}

int64_t
kmtz_wall_to_utc(const kmtz *z, int64_t wall)
{
    int     offs[5], n = 0;
    int64_t best = 0, first = 0;
    int     found = 0;

    /* the offsets in force around the wall time: a wall time maps to at most two instants,
     * each w - o for one of them */
    for (int k = -2; k <= 2; k++) {
        int o = kmtz_offset(z, wall + (int64_t)k * DAY);
        int seen = 0;

        for (int i = 0; i < n; i++)
            seen |= offs[i] == o;
        if (!seen)
            offs[n++] = o;
    }
    for (int i = 0; i < n; i++) {
        int64_t t = wall - offs[i];

        if (i == 0 || t < first)
            first = t;
        if (kmtz_offset(z, t) == offs[i] && (!found || t < best)) {
            best = t;
            found = 1;
        }
    }
    if (found)
        return best;
    /* skipped by a forward shift: read with the offset in force before it */
    return wall - kmtz_offset(z, first);
}
