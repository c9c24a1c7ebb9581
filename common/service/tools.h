/* tools.h — the tool handlers (the seed's eleven and the budget) (see reg.h for the kmtool_fn contract).
 *
 * Owns:    each handler returns a new `data` object on KM_OK; nothing else.
 * Threads: handlers run on service threads, one call per kmctx; they share no state.
 * Fails:   an envelope code with err->msg; enrichment lookups degrade to null instead.
 */
#ifndef KM_TOOLS_H
#define KM_TOOLS_H

#include "reg.h"

kmtool_fn kmtool_list_accounts;          /* tools_accounts.c */
kmtool_fn kmtool_campaign_performance;   /* tools_campaigns.c */
kmtool_fn kmtool_get_flows;              /* tools_flows.c */
kmtool_fn kmtool_flow_performance;       /* tools_flows.c */
kmtool_fn kmtool_flow_structure;         /* tools_flows.c */
kmtool_fn kmtool_over_time;              /* tools_series.c */
kmtool_fn kmtool_compare_periods;        /* tools_compare.c */
kmtool_fn kmtool_list_health;            /* tools_lists.c */
kmtool_fn kmtool_list_growth;            /* tools_lists.c */
kmtool_fn kmtool_list_growth_by_list;    /* tools_lists.c */
kmtool_fn kmtool_list_breakdown;         /* tools_lists.c */
kmtool_fn kmtool_get_budget;             /* tools_budget.c */

#endif
