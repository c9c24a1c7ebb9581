-- soak.lua — wrk script for bench/soak.sh: a mix of cached, uncached and bad calls, counted by
-- outcome. TOKEN (X-API-Key) and DELAY_MS (a pause after each answer, so the rate can be set
-- below the peak) come from the environment.
--
-- The mix, per 20 requests: 14 cached reads (the same questions again), 3 bad arguments (400),
-- 1 unknown route (404), 2 wrong credentials (403). Uncached and cancelled calls come from
-- soak.sh's side loop (Klaviyo's report windows bound how many uncached calls can succeed).
-- A failure is a 5xx, a 429 or a socket error: bad calls answered 4xx are the expected answer.
local token = os.getenv("TOKEN") or ""
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
local threads = {}
local counter = 0

local cached = {
    { "GET", "/v1/accounts", nil },
    { "GET", "/v1/flows?account=acme&status=live", nil },
    { "GET", "/v1/lists/health?account=acme", nil },
    { "POST", "/v1/campaigns/performance",
      '{"account":"acme","start_date":"2025-01-01","end_date":"2025-01-31"}' },
    { "POST", "/v1/flows/performance",
      '{"account":"kiwi","start_date":"2025-02-01","end_date":"2025-02-28"}' },
}

local bad = {
    { "POST", "/v1/campaigns/performance", '{"account":"acme","timeframe":"last_30_days",' ..
      '"start_date":"2025-01-01"}' },
    { "GET", "/v1/flows?account=acme&archived=maybe", nil },
    { "POST", "/v1/campaigns/performance", '{"account": ' },
}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    ok, client, limited, server, other = 0, 0, 0, 0, 0
end

local function req(method, path, body, key)
    local headers = { ["X-API-Key"] = key or token }
    if body then
        headers["Content-Type"] = "application/json"
    end
    return wrk.format(method, path, headers, body)
end

function request()
    counter = counter + 1
    local k = counter % 20
    if k < 14 then
        local c = cached[(counter % #cached) + 1]
        return req(c[1], c[2], c[3])
    elseif k < 17 then
        local b = bad[(counter % #bad) + 1]
        return req(b[1], b[2], b[3])
    elseif k == 17 then
        return req("GET", "/v1/nothing-here", nil)
    else
        return req("GET", "/v1/accounts", nil, "not-the-token")
    end
end

function response(status, headers, body)
    if status >= 200 and status < 300 then
        ok = ok + 1
    elseif status == 429 then
        limited = limited + 1
    elseif status >= 400 and status < 500 then
        client = client + 1
    elseif status >= 500 then
        server = server + 1
    else
        other = other + 1
    end
end

function delay()
    return delay_ms
end

function done(summary, latency, requests)
    local t = { ok = 0, client = 0, limited = 0, server = 0, other = 0 }
    for _, thread in ipairs(threads) do
        for k, _ in pairs(t) do
            t[k] = t[k] + (thread:get(k) or 0)
        end
    end
    local e = summary.errors
    io.write(string.format("SOAK requests=%d seconds=%.1f rate=%.1f ok=%d bad_4xx=%d " ..
                           "rate_limited_429=%d server_5xx=%d other=%d socket_connect=%d " ..
                           "socket_read=%d socket_write=%d timeouts=%d p50_ms=%.2f " ..
                           "p99_ms=%.2f\n",
                           summary.requests, summary.duration / 1e6,
                           summary.requests / (summary.duration / 1e6), t.ok, t.client,
                           t.limited, t.server, t.other, e.connect, e.read, e.write, e.timeout,
                           latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
