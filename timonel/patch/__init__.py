"""Every way the Kubernetes API changes an object in place, as pure functions.

    jsonpatch.apply_json_patch                 application/json-patch+json (RFC 6902)
    mergepatch.apply_merge_patch               application/merge-patch+json (RFC 7386)
    strategic.apply_strategic_merge_patch      application/strategic-merge-patch+json
    managedfields.apply                        application/apply-patch+yaml (server-side apply)
    managedfields.record_update                managedFields after any other write
    patchtypes                                 which content types a resource accepts (415)

None of them does I/O; only record_update changes its argument (it sets managedFields).
Failures are `StatusError`s worded as kube-apiserver words them.
"""
