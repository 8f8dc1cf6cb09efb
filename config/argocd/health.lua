-- Argo CD health check for the wharf.dev kinds (Registry, Project, RobotAccount,
-- ReplicationRule). They publish kstatus conditions, so this mirrors kstatus:
--   status not yet written, or observedGeneration behind metadata.generation -> Progressing
--   Stalled=True                                                             -> Degraded
--   Ready=True                                                               -> Healthy
--   otherwise (Reconciling=True, Ready=False)                                -> Progressing
local hs = { status = "Progressing", message = "Waiting for the Wharf operator" }
if obj.status == nil then
  return hs
end
if obj.status.observedGeneration == nil or obj.status.observedGeneration ~= obj.metadata.generation then
  hs.message = "Waiting for the Wharf operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local ready, stalled, reconciling = nil, nil, nil
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then
      ready = c
    elseif c.type == "Stalled" then
      stalled = c
    elseif c.type == "Reconciling" then
      reconciling = c
    end
  end
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = reconciling.message
elseif ready ~= nil then
  hs.message = ready.message
end
return hs
