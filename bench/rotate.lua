-- rotate.lua — wrk script: POST a different JSON body on each request, round-robin over the
-- lines of the file BODIES_FILE (one JSON body per line). TOKEN is sent as X-API-Key.
local bodies = {}
for line in io.lines(os.getenv("BODIES_FILE")) do
    if line ~= "" then bodies[#bodies + 1] = line end
end
local headers = { ["Content-Type"] = "application/json" }
local token = os.getenv("TOKEN")
if token and token ~= "" then headers["X-API-Key"] = token end
local i = 0

function init(args)
    -- threads start at different places, so together they cover every body evenly
    i = math.random(#bodies) - 1
end

function request()
    i = i % #bodies + 1
    return wrk.format("POST", nil, headers, bodies[i])
end
