/* tools_common.c — windows, the metric block, rates and deltas. */
#include "tools_common.h"
#include "json.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

kmcode
kmt_window(kmctx *ctx, json_object *args, kmrange *out, kmerr *err)
{
    kmcode rc = kmdate_window(kmjson_str(args, "timeframe"), kmjson_str(args, "start_date"),
                              kmjson_str(args, "end_date"), ctx->today, out, err);

    if (rc != KM_OK)
        return rc;
    ctx->period = *out;
    ctx->has_period = 1;
    return KM_OK;
}

json_object *
kmt_timeframe(kmrange r)
{
    json_object *tf = json_object_new_object();
    char         d[11], buf[32];

    kmdate_format(r.start, d);
    snprintf(buf, sizeof(buf), "%sT00:00:00", d);
    json_object_object_add(tf, "start", json_object_new_string(buf));
    kmdate_format(r.end, d);
    snprintf(buf, sizeof(buf), "%sT23:59:59", d);
    json_object_object_add(tf, "end", json_object_new_string(buf));
    return tf;
}

json_object *
kmt_aggregate_filter(kmrange r)
{
    json_object *f = json_object_new_array();
    char         d[11], buf[80];

    kmdate_format(r.start, d);
    snprintf(buf, sizeof(buf), "greater-or-equal(datetime,%sT00:00:00)", d);
    json_object_array_add(f, json_object_new_string(buf));
    kmdate_format(r.end + 1, d);
    snprintf(buf, sizeof(buf), "less-than(datetime,%sT00:00:00)", d);
    json_object_array_add(f, json_object_new_string(buf));
    return f;
}

size_t
kmt_chunks(kmctx *ctx, kmrange r, kmrange **chunks)
{
    size_t n = kmdate_split(r, KMDATE_CHUNK_DAYS, NULL, 0);

    *chunks = km_xcalloc(n ? n : 1, sizeof(**chunks));
    kmdate_split(r, KMDATE_CHUNK_DAYS, *chunks, n);
    if (n > 1)
        kmctx_warn(ctx,
                   "The window spans %d days, more than Klaviyo's one-year report limit; it "
                   "was fetched in %zu consecutive chunks and merged (counts summed, rates "
                   "rederived from the sums).",
                   kmdate_range_days(r), n);
    return n;
}

void
kmt_metrics_add(kmmetrics *m, json_object *s)
{
    m->sent += kmjson_num(s, "recipients", 0);
    m->delivered += kmjson_num(s, "delivered", 0);
    m->opens += kmjson_num(s, "opens_unique", 0);
    m->clicks += kmjson_num(s, "clicks_unique", 0);
    m->bounces += kmjson_num(s, "bounced", 0);
    m->unsubscribes += kmjson_num(s, "unsubscribes", 0);
    m->conversions += kmjson_num(s, "conversions", 0);
    m->conversion_value += kmjson_num(s, "conversion_value", 0);
}

void
kmt_metrics_sum(kmmetrics *into, const kmmetrics *m)
{
    into->sent += m->sent;
    into->delivered += m->delivered;
    into->opens += m->opens;
    into->clicks += m->clicks;
    into->bounces += m->bounces;
    into->unsubscribes += m->unsubscribes;
    into->conversions += m->conversions;
    into->conversion_value += m->conversion_value;
}

json_object *
kmt_rate(double num, double den)
{
    if (den == 0)
        return NULL;
    return kmjson_double(kmjson_round(num / den, 4));
}

void
kmt_metrics_put(json_object *o, const kmmetrics *m)
{
    json_object_object_add(o, "sent", kmjson_double(m->sent));
    json_object_object_add(o, "delivered", kmjson_double(m->delivered));
    json_object_object_add(o, "opens", kmjson_double(m->opens));
    json_object_object_add(o, "open_rate", kmt_rate(m->opens, m->delivered));
    json_object_object_add(o, "clicks", kmjson_double(m->clicks));
    json_object_object_add(o, "click_rate", kmt_rate(m->clicks, m->delivered));
    json_object_object_add(o, "bounces", kmjson_double(m->bounces));
    json_object_object_add(o, "bounce_rate", kmt_rate(m->bounces, m->sent));
    json_object_object_add(o, "unsubscribes", kmjson_double(m->unsubscribes));
    json_object_object_add(o, "conversions", kmjson_double(m->conversions));
    /* money: cents are enough, and sums of floats otherwise print long tails */
    json_object_object_add(o, "conversion_value",
                           kmjson_double(kmjson_round(m->conversion_value, 2)));
}

json_object *
kmt_deltas(json_object *current, json_object *prior)
{
    json_object *d = json_object_new_object();

    json_object_object_foreach(current, key, cur) {
        json_object *pri = kmjson_get(prior, key);
        json_object *one = json_object_new_object();

        if (!cur || !pri) {
            json_object_object_add(one, "absolute", NULL);
            json_object_object_add(one, "pct_change", NULL);
        } else {
            double c = json_object_get_double(cur), p = json_object_get_double(pri);
            json_object_object_add(one, "absolute", kmjson_double(kmjson_round(c - p, 4)));
            json_object_object_add(one, "pct_change",
                                   p == 0 ? NULL : kmjson_double(kmjson_round((c - p) / p, 4)));
        }
        json_object_object_add(d, key, one);
    }
    return d;
}

char *
kmt_filter_equals(const char *field, const char *value)
{
    return km_xasprintf("equals(%s,\"%s\")", field, value);
}
