/* truth.h — ground truth for tests: what Klaviyo (the simulator) must answer, computed straight
 * from the simulated world (simdata.h, simstats.h), never through the simulator's HTTP code.
 *
 * Owns:    arrays returned through out-parameters belong to the caller: free() them, or
 *          simtruth_series_free for a series. Account and entity pointers are borrowed from
 *          the simdata (see simdata.h), valid until simdata_free.
 * Threads: pure functions of their arguments; safe from any thread.
 * Fails:   functions return -1 for an unknown account, metric or timezone, and leave their
 *          out-parameters empty.
 *
 * Use: `simdata *sd = simdata_new(seed)` with the seed the simulator runs with (default 1),
 * then ask. Days are calendar days in the ACCOUNT's timezone for reports (a report over
 * D1..D2 is what the simulator answers for start D1T00:00:00, end D2T23:59:59), and in the
 * timezone you name for metric events (what metric-aggregates answers for
 * greater-or-equal D1T00:00:00 and less-than (D2+1)T00:00:00 in that timezone).
 *
 * Rows come in the order the simulator's reports list them (campaigns by creation, flow
 * messages by flow then step); entities with no activity in the window have no row. Turn
 * counts into Klaviyo statistics with simstat_value(&row.counts, simstat_find("open_rate")):
 * rates are computed from summed counts (simstats.h lists every formula), so to merge rows or
 * chunks, add counts with simstat_add first and derive rates after.
 *
 * Accessors live in simdata.h: simdata_account_by_name (tz, currency, key, limited_key, id),
 * simdata_metric_by_name (metric ids; the conversion metric is
 * a->metrics[a->conversion_metric]), simdata_campaign (names, channel, status), a->flows[]
 * (name, status, archived, trigger_type, created, updated), a->lists[] (id, name,
 * profile_count). The helpers below cover flow structure and the sums.
 */
#ifndef SIM_TRUTH_H
#define SIM_TRUTH_H

#include "dates.h"
#include "simdata.h"
#include "simstats.h"

#include <stddef.h>
#include <stdint.h>

struct simtruth_row {
    char             entity_id[28];   /* campaign_id or flow_id */
    char             message_id[28];  /* campaign_message_id (= campaign_id) or flow_message_id */
    enum simchan     channel;         /* send_channel */
    struct simcounts counts;
};

/* Campaign-values rows over local days `days` (inclusive) of account `acct`; only_id narrows
 * to one campaign (NULL = all). Returns the row count (*rows is a new array, NULL when 0) or
 * -1 for an unknown account. */
long simtruth_campaign_values(const simdata *sd, const char *acct, kmrange days,
                              const char *only_id, struct simtruth_row **rows);

/* Campaign values reports count by send date: a campaign sent in the window brings every count
 * of its activity, one sent before it brings nothing. simtruth_campaign_activity counts the
 * same campaigns' activity by event time instead (what happened within local days `days`,
 * whenever the campaign was sent): the truth behind the activity basis of campaign trends. */
long simtruth_campaign_activity(const simdata *sd, const char *acct, kmrange days,
                                const char *only_id, struct simtruth_row **rows);

/* Flow-values rows (one per flow message with activity); only_flow_id narrows to one flow. */
long simtruth_flow_values(const simdata *sd, const char *acct, kmrange days,
                          const char *only_flow_id, struct simtruth_row **rows);

/* The same over local hours [from, to] (simdata_hour(day, hour)), for hour-edge tests: a
 * report whose end is D+1T00:00:00 covers hours up to simdata_hour(D + 1, 0). */
long simtruth_campaign_values_hours(const simdata *sd, const char *acct, simhour from,
                                    simhour to, const char *only_id,
                                    struct simtruth_row **rows);
long simtruth_flow_values_hours(const simdata *sd, const char *acct, simhour from, simhour to,
                                const char *only_flow_id, struct simtruth_row **rows);

/* The counts of every row added together. */
void simtruth_sum(const struct simtruth_row *rows, size_t n, struct simcounts *out);

/* A flow series over local days `days`: buckets as the simulator makes them (hourly: every
 * local hour; daily/weekly/monthly: the first bucket starts at days.start, later ones at each
 * day / 7th day from days.start / 1st of the month, kmdate_buckets), rows like simtruth_flow_values. */
struct simtruth_series_row {
    char              flow_id[16], message_id[8];
    enum simchan      channel;
    struct simcounts *buckets;        /* n_buckets entries */
};

struct simtruth_series {
    size_t                      n_buckets;
    char                      (*date_times)[32];  /* local bucket starts with the account's
                                                   * offset: "2025-03-03T00:00:00-05:00" */
    size_t                      n_rows;
    struct simtruth_series_row *rows;
};

long simtruth_flow_series(const simdata *sd, const char *acct, kmrange days, kminterval iv,
                          const char *only_flow_id, struct simtruth_series *out);
void simtruth_series_free(struct simtruth_series *s);

/* Metric events of `metric_id` whose instants fall in [days.start 00:00, days.end + 1 00:00)
 * in timezone `tz`. list_name NULL counts every event; otherwise only the events of lists so
 * named (the list pair only: other metrics have no list and count 0). 0 or -1. */
int simtruth_metric_events(const simdata *sd, const char *acct, const char *metric_id,
                           kmrange days, const char *tz, const char *list_name,
                           struct simevents *out);

/* The same per list name (the by:["List"] dimension), for every name with at least one event
 * in the window, in list order (a name shared by two lists appears once, summed). Returns the
 * number of names; *out is a new array (free()). A metric that is not per list gives one row
 * named "" when it had events. */
struct simtruth_named {
    char             name[64];
    struct simevents events;
};
long simtruth_metric_by_list(const simdata *sd, const char *acct, const char *metric_id,
                             kmrange days, const char *tz, struct simtruth_named **out);

/* Per-day counts in timezone `tz` (what metric-aggregates with interval "day" gives for that
 * window): counts[i] is day days.start + i. Returns the number of days or -1. */
long simtruth_metric_daily(const simdata *sd, const char *acct, const char *metric_id,
                           kmrange days, const char *tz, int64_t **counts);

/* The size GET /api/lists/{id}?additional-fields[list]=profile_count reports, or -1 for an
 * unknown list. */
int64_t simtruth_list_size(const struct simacct *a, const char *list_id);

/* A flow's actions in Klaviyo's order (borrowed from the simdata; *out NULL when none) and how
 * many there are; -1 for an unknown flow. A send action's message is
 * a->msgs[action->message] (id, name, channel); other actions have message -1. */
long simtruth_flow_actions(const struct simacct *a, const char *flow_id,
                           const struct simaction **out);

#endif
