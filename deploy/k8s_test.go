package deploy_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// rendered is the output of `kubectl kustomize k8s`, decoded.
type rendered struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	pdbs        map[string]*policyv1.PodDisruptionBudget
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	namespaces  map[string]*corev1.Namespace
}

// render runs kustomize on k8s/ and decodes every object strictly into its API type: an
// unknown or duplicated field, a wrong type or an unknown kind fails.
func render(t *testing.T) rendered {
	t.Helper()
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "k8s")
	if err != nil {
		t.Fatalf("kustomize build k8s: %v", err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, autoscalingv2.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	decoder := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Yaml: true, Strict: true})
	r := rendered{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, namespaces: map[string]*corev1.Namespace{},
	}
	for _, res := range resMap.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, gvk, err := decoder.Decode(y, nil, nil)
		if err != nil {
			t.Errorf("%s %s: %v", res.GetKind(), res.GetName(), err)
			continue
		}
		if ns := res.GetNamespace(); gvk.Kind != "Namespace" && ns != "charla" {
			t.Errorf("%s %s is in namespace %q, want charla", gvk.Kind, res.GetName(), ns)
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			r.deployments[o.Name] = o
		case *corev1.Service:
			r.services[o.Name] = o
		case *policyv1.PodDisruptionBudget:
			r.pdbs[o.Name] = o
		case *autoscalingv2.HorizontalPodAutoscaler:
			r.hpas[o.Name] = o
		case *corev1.ConfigMap:
			r.configMaps[o.Name] = o
		case *corev1.Secret:
			r.secrets[o.Name] = o
		case *corev1.Namespace:
			r.namespaces[o.Name] = o
		default:
			t.Errorf("%s %s: a kind this test does not check", gvk.Kind, res.GetName())
		}
	}
	return r
}

// components are the processes deployed, by Deployment name, and their port.
var components = map[string]int32{"edge": 8080, "chatsvc": 8090, "profilesvc": 8090, "notifysvc": 8090, "presencesvc": 8090}

func TestManifests(t *testing.T) {
	t.Parallel()
	r := render(t)
	if len(r.deployments) != len(components) {
		t.Errorf("deployments %v, want one per component %v", keys(r.deployments), keys(components))
	}
	targets := dockerTargets(t)
	for name, port := range components {
		t.Run(name, func(t *testing.T) {
			d := r.deployments[name]
			if d == nil {
				t.Fatalf("no Deployment %s", name)
			}
			pod := d.Spec.Template
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
				t.Errorf("selector %v does not match the pod labels %v (%v)", d.Spec.Selector, pod.Labels, err)
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
				t.Errorf("replicas %v, want at least 2 (the PDB keeps one)", d.Spec.Replicas)
			}
			psc := pod.Spec.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
				t.Error("pod does not require a non-root user")
			}
			if len(pod.Spec.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
			}
			c := pod.Spec.Containers[0]
			checkContainer(t, r, c, port)
			image, _, _ := strings.Cut(c.Image, ":")
			if target, ok := strings.CutPrefix(image, "charla/"); !ok || !slices.Contains(targets, target) {
				t.Errorf("image %s: want charla/<a target of the Dockerfile %v>", c.Image, targets)
			}

			svc := r.services[name]
			if svc == nil {
				t.Fatalf("no Service %s", name)
			}
			if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
				t.Errorf("Service selector %v does not match the pods %v", svc.Spec.Selector, pod.Labels)
			}
			for _, p := range svc.Spec.Ports {
				if p.TargetPort.String() != c.Ports[0].Name && p.TargetPort.IntVal != port {
					t.Errorf("Service port %s targets %s, want the container's %s", p.Name, p.TargetPort.String(), c.Ports[0].Name)
				}
				// A headless Service maps no ports: clients dial the pods at the port they know.
				if name != "edge" && p.Port != c.Ports[0].ContainerPort {
					t.Errorf("Service port %s is %d, want the container's %d (the Service is headless)", p.Name, p.Port, c.Ports[0].ContainerPort)
				}
			}
			// The services' Services are headless, so that their names resolve to every
			// pod and the callers' balancer spreads calls over them (shared/rpc).
			if name != "edge" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("Service %s: clusterIP %q, want None (headless)", name, svc.Spec.ClusterIP)
			}
			pdb := r.pdbs[name]
			if pdb == nil {
				t.Fatalf("no PodDisruptionBudget %s", name)
			}
			if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || !sel.Matches(labels.Set(pod.Labels)) {
				t.Errorf("PDB selector %v does not match the pods", pdb.Spec.Selector)
			}
			if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
				t.Error("PDB sets neither minAvailable nor maxUnavailable")
			}
		})
	}
	hpa := r.hpas["edge"]
	if hpa == nil {
		t.Fatal("no HorizontalPodAutoscaler for the edge")
	}
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || r.deployments[ref.Name] == nil {
		t.Errorf("HPA scales %s %s, want the edge Deployment", ref.Kind, ref.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas <= *hpa.Spec.MinReplicas {
		t.Errorf("HPA replicas %v..%d, want min ≥ 2 < max", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if len(r.hpas) != 1 {
		t.Errorf("HPAs %v, want the edge's only", keys(r.hpas))
	}
}

// checkContainer checks one container: probes, resources, hardening, and that every
// ConfigMap and Secret it names is rendered (under its hashed name) with the key.
func checkContainer(t *testing.T, r rendered, c corev1.Container, port int32) {
	t.Helper()
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != port {
		t.Errorf("ports %v, want %d", c.Ports, port)
	}
	if c.ReadinessProbe == nil || c.LivenessProbe == nil {
		t.Fatal("readiness or liveness probe missing")
	}
	switch rp := c.ReadinessProbe.ProbeHandler; {
	case port == 8080 && (rp.HTTPGet == nil || rp.HTTPGet.Path != "/ready"):
		t.Errorf("edge readiness %+v, want GET /ready", rp)
	case port == 8090 && (rp.GRPC == nil || rp.GRPC.Port != port):
		t.Errorf("service readiness %+v, want gRPC health on %d", rp, port)
	}
	if lp := c.LivenessProbe.HTTPGet; lp == nil || lp.Path != "/health" {
		t.Errorf("liveness %+v, want GET /health (it ignores the dependencies)", c.LivenessProbe.ProbeHandler)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v, want cpu and memory requests and a memory limit", c.Resources)
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container security context %+v, want no privilege escalation, read-only root, ALL capabilities dropped", sc)
	}
	env := map[string]bool{}
	for _, from := range c.EnvFrom {
		if ref := from.ConfigMapRef; ref != nil {
			cm := r.configMaps[ref.Name]
			if cm == nil {
				t.Errorf("envFrom ConfigMap %s is not rendered (have %v)", ref.Name, keys(r.configMaps))
				continue
			}
			for k := range cm.Data {
				env[k] = true
			}
		}
	}
	for _, e := range c.Env {
		env[e.Name] = true
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		s := r.secrets[ref.Name]
		if s == nil {
			t.Errorf("env %s: Secret %s is not rendered (have %v)", e.Name, ref.Name, keys(r.secrets))
		} else if _, ok := s.Data[ref.Key]; !ok {
			t.Errorf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
		}
	}
	want := []string{"INTERNAL_API_TOKEN", "BUS_URL", "CHAT_URL", "PROFILE_URL", "NOTIFY_URL", "PRESENCE_URL", "LOG_FORMAT"}
	if port == 8090 {
		want = append(want, "DATABASE_URL")
	}
	for _, k := range want {
		if !env[k] {
			t.Errorf("%s is not set", k)
		}
	}
}

// dockerTargets are the FROM ... AS <target> stages of the Dockerfile.
func dockerTargets(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, m := range regexp.MustCompile(`(?m)^FROM \S+ AS (\S+)$`).FindAllStringSubmatch(string(b), -1) {
		targets = append(targets, m[1])
	}
	return targets
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
