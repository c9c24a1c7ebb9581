// heavy.mjs — the heaviest ordinary call of each tool on the simulator's largest account
// (acme: 62 flows, 23 lists, a campaign every few days), shared by answers.test.mjs (which
// holds their text to the 40,000-character budget) and bench/answer_sizes.mjs (which prints
// their sizes so growth is noticed). `acceptance` marks the calls issue 11 names.

export const ACCOUNT = 'acme';

export function heavyCalls(flowId) {
  const a = ACCOUNT;
  const quarter = { start_date: '2026-07-01', end_date: '2026-09-30' };
  const year = { start_date: '2025-07-01', end_date: '2026-06-30' };
  return [
    { name: 'klaviyo_get_performance_over_time', label: 'flow series weekly, a quarter',
      acceptance: true,
      arguments: { account: a, entity: 'flow', interval: 'weekly', ...quarter } },
    { name: 'klaviyo_get_performance_over_time', label: 'flow series daily, a quarter',
      acceptance: true,
      arguments: { account: a, entity: 'flow', interval: 'daily', ...quarter } },
    { name: 'klaviyo_get_campaign_performance', label: 'campaigns, 18 months, names',
      acceptance: true,
      arguments: { account: a, start_date: '2025-01-01', end_date: '2026-06-30',
        resolve_campaign_names: true } },
    { name: 'klaviyo_get_flow_performance', label: 'flow messages, a year, names',
      acceptance: true,
      arguments: { account: a, ...year, resolve_message_names: true } },
    { name: 'klaviyo_get_performance_over_time', label: 'campaign trend weekly, 6 months',
      acceptance: true,
      arguments: { account: a, entity: 'campaign', interval: 'weekly',
        start_date: '2026-01-01', end_date: '2026-06-30' } },
    { name: 'klaviyo_get_list_breakdown', label: 'list breakdown, a year', acceptance: true,
      arguments: { account: a, ...year } },
    { name: 'klaviyo_list_accounts', label: 'accounts', arguments: {} },
    { name: 'klaviyo_get_flows', label: 'every flow', arguments: { account: a } },
    { name: 'klaviyo_get_flow_structure', label: 'one flow', arguments: { account: a,
      flow_id: flowId } },
    { name: 'klaviyo_compare_periods', label: 'flows, a year against the one before',
      arguments: { account: a, entity: 'flow', ...year } },
    { name: 'klaviyo_get_list_health', label: 'every list', arguments: { account: a } },
    { name: 'klaviyo_get_list_growth', label: 'a year', arguments: { account: a, ...year } },
    { name: 'klaviyo_get_list_growth_by_list', label: 'a year',
      arguments: { account: a, ...year } },
  ];
}

// What a model reads at most from one answer (about 10k tokens).
export const TEXT_BUDGET = 40000;
