"""The members service as other services call it (over nameko RPC, through
the kernel's ``rpc.call``: a 503 instead of a hang). Mixed into a service that
has ``members = RpcProxy("members")`` and ``config``."""
from services.common.rpc import call


class MembersLookup:
    """The members service seen from another service (mixed into it; needs
    ``members = RpcProxy("members")`` and ``config``)."""

    def lookup_members(self, ids):
        """id → public view of each of ``ids`` that exists (any status)."""
        ids = [i for i in dict.fromkeys(ids) if i]
        found = {}
        for start in range(0, len(ids), 500):
            found.update(call(self.members, "get_members", ids[start:start + 500],
                              what="委员服务", timeout=self.config.get("RPC_TIMEOUT_SECONDS")))
        return found

    def active_members(self, ids):
        return {k: v for k, v in self.lookup_members(ids).items()
                if v.get("status") == "active"}

    def member_names(self, ids):
        return {k: v.get("name") for k, v in self.lookup_members(sorted(set(ids))).items()}
