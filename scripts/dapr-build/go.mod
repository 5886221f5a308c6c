module local/daprd-build

go 1.26.6

require github.com/dapr/dapr v1.18.3

// Pulls in apache/pulsar-client-go v0.18.0 (unforked, see below); pin its avro dep to what
// components-contrib v1.18.4 is tested with instead of letting -mod=mod pick "latest".
require github.com/hamba/avro/v2 v2.29.0 // indirect

// dapr v1.18.3's replace block (DAPR.md §1), except: the module proxy reachable here answers
// 403 "This module version is not available" for github.com/twmb/pulsar-client-go (the pulsar
// fork), github.com/iskorotkov/avro/v2 and github.com/dapr/durabletask-go v0.12.4. So:
//   - no pulsar replace: use apache/pulsar-client-go v0.18.0 as components-contrib does;
//   - iskorotkov/avro/v2 (only set in daprd's pubsub_pulsar.go init) => a stub that
//     scripts/build-dapr.sh writes next to this file in the build dir;
//   - durabletask-go (workflows only) => v0.12.1, the newest 0.12.x the proxy serves.
replace (
	dubbo.apache.org/dubbo-go/v3 => dubbo.apache.org/dubbo-go/v3 v3.0.3-0.20230118042253-4f159a2b38f3
	gopkg.in/couchbaselabs/gocbconnstr.v1 => github.com/couchbaselabs/gocbconnstr v1.0.5
	github.com/chenzhuoyu/iasm => github.com/chenzhuoyu/iasm v0.9.0
	github.com/chzyer/logex => github.com/chzyer/logex v1.2.1
	github.com/gobwas/pool => github.com/gobwas/pool v0.2.1
	github.com/toolkits/concurrent => github.com/niean/gotools v0.0.0-20151221085310-ff3f51fc5c60

	github.com/dapr/durabletask-go => github.com/dapr/durabletask-go v0.12.1
	github.com/iskorotkov/avro/v2 => ./avro-stub
)
