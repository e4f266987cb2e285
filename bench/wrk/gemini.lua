-- wrk script: non-streaming Gemini generateContent (the model is in the URL), the same question
-- as chat.lua.
bench_body = '{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}'
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
