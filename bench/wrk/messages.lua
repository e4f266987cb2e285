-- wrk script: non-streaming Anthropic Messages call (/v1/messages), the same question as chat.lua.
bench_body = '{"model":"echo","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}'
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
