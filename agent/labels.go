package agent

import (
	"path/filepath"
	"strconv"

	"github.com/flightrec/flightrec/agent/procinfo"
)

// Label names on every profile the agent produces.
const (
	LabelNode        = "node"
	LabelPID         = "pid"
	LabelComm        = "comm"
	LabelExe         = "exe"
	LabelBuildID     = "build_id"
	LabelContainerID = "container_id"
	LabelService     = "service"
	LabelVersion     = "version"
	LabelEnvironment = "environment"
	LabelNamespace   = "namespace"
	LabelPod         = "pod"
	LabelContainer   = "container"
)

// KernelService is the service of kernel threads, which have no executable.
const KernelService = "kernel"

// processLabels computes a process's series labels. Service and version come
// from the process's OpenTelemetry resource when it has one, else from its
// executable's name and build ID, so every process is queryable by both.
// p may be nil when the process exited before the agent could read it.
func processLabels(node string, pid uint32, comm string, p *procinfo.Process, buildID string) map[string]string {
	l := map[string]string{
		LabelNode: node,
		LabelPID:  strconv.FormatUint(uint64(pid), 10),
		LabelComm: comm,
	}
	if p == nil {
		l[LabelService] = comm
		return l
	}
	l[LabelComm] = p.Comm
	l[LabelExe] = p.Exe
	l[LabelBuildID] = buildID
	l[LabelContainerID] = p.Container
	env := p.Env
	l[LabelService] = firstNonEmpty(env.Attribute("service.name"), filepath.Base(p.Exe))
	if p.Kernel || p.Exe == "" {
		l[LabelService] = firstNonEmpty(env.Attribute("service.name"), KernelService)
	}
	l[LabelVersion] = firstNonEmpty(env.Attribute("service.version"), buildID)
	l[LabelEnvironment] = firstNonEmpty(env.Attribute("deployment.environment.name"), env.Attribute("deployment.environment"))
	l[LabelNamespace] = env.Attribute("k8s.namespace.name")
	l[LabelPod] = env.Attribute("k8s.pod.name")
	l[LabelContainer] = env.Attribute("k8s.container.name")
	return l
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
