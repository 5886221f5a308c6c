"""The upload life cycle, one module per step.

`creation`: a pending input file (perhaps a task's) and the signed URL its bytes go to →
`receipt`: bytes that come through the service (a local signed PUT, a multipart import), or
`confirmation`: bytes PUT straight to the store, confirmed by the client →
`arrival`: the bytes refused, or the file marked ready and the task waiting for it released →
`expiry`: what check-uploads settles (bytes nobody confirmed, tasks whose bytes never came).
"""
