# The Nomad ACL policy scalepress's controller needs (scheduler.token_file),
# for the default job name scheduler.job = "scalepress-nodes" in the default
# namespace. test/multihost's TestNomadACLTLS runs `scalepress up` with a
# token holding only this policy, so it cannot drift from what the
# controller does. See docs/multi-host.md, "ACLs and TLS".
#
#   nomad acl policy apply -description "scalepress controller" scalepress deploy/nomad/scalepress-policy.hcl
#   nomad acl token create -name scalepress -policy scalepress -type client
#
# Another scheduler.job or scheduler.namespace: change the namespace label
# and the variables path below to match.

namespace "default" {
  # submit-job: register, plan, stop and re-evaluate (force a reschedule)
  #   the node job and the role jobs (JOB-files, JOB-redis, JOB-dns,
  #   JOB-db, JOB-dbrouter, edges); it also allows the job scale API.
  # read-job: read those jobs, their allocations, deployments and their
  #   Nomad services (the roles' addresses).
  # alloc-lifecycle: signal a node's allocation to fail (the node group
  #   replacing a node whose checks failed).
  capabilities = ["submit-job", "read-job", "alloc-lifecycle"]

  # The jobs' variables (their specs, rendered into each task's secrets/)
  # and the controller's own (nomad/jobs/JOB-controller: the state a new
  # controller adopts the site from, ADR 27): every path starts with the
  # node job's name. No list: scalepress reads paths it knows.
  variables {
    path "nomad/jobs/scalepress-nodes*" {
      capabilities = ["read", "write", "destroy"]
    }
  }
}

# The host name of the client a role job runs on (status, events).
node {
  policy = "read"
}
