-- wrk script: non-streaming chat completion. Optional env BENCH_AUTH = Authorization value.
bench_body = '{"model":"echo","messages":[{"role":"user","content":"hi"}]}'
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
