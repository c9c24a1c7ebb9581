-- post.lua — wrk script: POST the same JSON body on every request.
-- BODY (the JSON text) and TOKEN (sent as X-API-Key; optional) come from the environment.
wrk.method = "POST"
wrk.body = os.getenv("BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("TOKEN")
if token and token ~= "" then
    wrk.headers["X-API-Key"] = token
end
