-- wrk script: POST multipart bodies prepared by bench/http.py, cycling through them.
-- Usage: wrk -s bench/wrk_multipart.lua URL -- body1 body2 ...
local bodies = {}
local boundary = "notHotdogBench7f3a"
local counter = 0

function init(args)
  for i, path in ipairs(args) do
    local file = assert(io.open(path, "rb"))
    bodies[i] = file:read("*all")
    file:close()
  end
end

function request()
  counter = counter + 1
  local body = bodies[(counter % #bodies) + 1]
  return wrk.format("POST", "/api/v1/classify",
    { ["Content-Type"] = "multipart/form-data; boundary=" .. boundary }, body)
end
