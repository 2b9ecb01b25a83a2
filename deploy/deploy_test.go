package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const (
	manifestDir = "kubernetes"
	// examplesFile holds placeholder Secrets: they count as existing for
	// references, but kustomization.yaml must not apply them.
	examplesFile  = "secrets.example.yaml"
	kustomizeFile = "kustomization.yaml"
)

// manifests is every object decoded from one directory.
type manifests struct {
	statefulSets []*appsv1.StatefulSet
	deployments  []*appsv1.Deployment
	services     []*corev1.Service
	claims       []*corev1.PersistentVolumeClaim
	configMaps   []*corev1.ConfigMap
	secrets      []*corev1.Secret // only from examplesFile
	kustomize    *kustomization
	files        []string // YAML file names in the directory
}

// kustomization is the part of kustomize's Kustomization we use; decoding
// it strictly makes any other field an error, so this list grows on purpose.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []image  `json:"images,omitempty"`
}

type image struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	if len(files) == 0 {
		t.Fatalf("no YAML files in %s", dir)
	}
	return files
}

// splitDocuments cuts a YAML stream at "---" lines and drops documents that
// hold only comments and blank lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		for _, line := range strings.Split(cur.String(), "\n") {
			if s := strings.TrimSpace(line); s != "" && !strings.HasPrefix(s, "#") {
				docs = append(docs, bytes.Clone(cur.Bytes()))
				break
			}
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if strings.TrimRight(sc.Text(), " \t") == "---" {
			flush()
			continue
		}
		cur.WriteString(sc.Text())
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

// decode reads every file strictly into the API types. Only the kinds the
// deployment uses are known; anything else is an error rather than a skip,
// so a new object gets checks before it ships.
func decode(files map[string][]byte) (*manifests, error) {
	m := &manifests{}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	m.files = names
	for _, name := range names {
		if name == kustomizeFile {
			k := &kustomization{}
			if err := yaml.UnmarshalStrict(files[name], k); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
				return nil, fmt.Errorf("%s: apiVersion %q kind %q, want kustomize.config.k8s.io/v1beta1 Kustomization", name, k.APIVersion, k.Kind)
			}
			m.kustomize = k
			continue
		}
		for i, doc := range splitDocuments(files[name]) {
			if err := m.decodeOne(name, doc); err != nil {
				return nil, fmt.Errorf("%s document %d: %w", name, i+1, err)
			}
		}
	}
	return m, nil
}

func (m *manifests) decodeOne(file string, doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var obj metav1.Object
	var into any
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 StatefulSet":
		o := &appsv1.StatefulSet{}
		m.statefulSets, obj, into = append(m.statefulSets, o), o, o
	case "apps/v1 Deployment":
		o := &appsv1.Deployment{}
		m.deployments, obj, into = append(m.deployments, o), o, o
	case "v1 Service":
		o := &corev1.Service{}
		m.services, obj, into = append(m.services, o), o, o
	case "v1 PersistentVolumeClaim":
		o := &corev1.PersistentVolumeClaim{}
		m.claims, obj, into = append(m.claims, o), o, o
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		m.configMaps, obj, into = append(m.configMaps, o), o, o
	case "v1 Secret":
		if file != examplesFile {
			return fmt.Errorf("a Secret belongs in %s (placeholders), not in %s: real ones are made with kubectl create secret", examplesFile, file)
		}
		o := &corev1.Secret{}
		m.secrets, obj, into = append(m.secrets, o), o, o
	default:
		return fmt.Errorf("apiVersion %q kind %q: not a kind this test knows how to check", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		return fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if obj.GetName() == "" {
		return fmt.Errorf("%s without metadata.name", tm.Kind)
	}
	if obj.GetNamespace() != "" {
		return fmt.Errorf("%s %s: metadata.namespace %q: the manifests are namespace-less (set it in kustomization.yaml)", tm.Kind, obj.GetName(), obj.GetNamespace())
	}
	if file == examplesFile && tm.Kind != "Secret" {
		return fmt.Errorf("%s %s in %s: only example Secrets go there", tm.Kind, obj.GetName(), file)
	}
	return nil
}

// workload is a pod template with where it came from.
type workload struct {
	what     string // "StatefulSet sluice-executor"
	selector *metav1.LabelSelector
	pod      corev1.PodTemplateSpec
}

func (m *manifests) workloads() []workload {
	var ws []workload
	for _, s := range m.statefulSets {
		ws = append(ws, workload{"StatefulSet " + s.Name, s.Spec.Selector, s.Spec.Template})
	}
	for _, d := range m.deployments {
		ws = append(ws, workload{"Deployment " + d.Name, d.Spec.Selector, d.Spec.Template})
	}
	return ws
}

// checker collects every problem, so one run names them all.
type checker struct {
	m    *manifests
	errs []error
}

func (c *checker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func check(m *manifests) error {
	c := &checker{m: m}
	c.kustomization()
	c.services()
	c.statefulSets()
	c.deployments()
	for _, w := range m.workloads() {
		c.workload(w)
	}
	return errors.Join(c.errs...)
}

func (c *checker) kustomization() {
	k := c.m.kustomize
	if k == nil {
		c.errorf("no %s", kustomizeFile)
		return
	}
	var want []string
	for _, f := range c.m.files {
		if f != kustomizeFile && f != examplesFile {
			want = append(want, f)
		}
	}
	got := slices.Clone(k.Resources)
	sort.Strings(got)
	if slices.Contains(got, examplesFile) {
		c.errorf("%s lists %s: applying it would overwrite the real Secrets with placeholders", kustomizeFile, examplesFile)
	}
	if !slices.Equal(got, want) {
		c.errorf("%s resources %v, want every manifest file %v", kustomizeFile, got, want)
	}
	for _, w := range c.m.workloads() {
		for _, ctr := range w.pod.Spec.Containers {
			if !slices.ContainsFunc(k.Images, func(i image) bool { return i.Name == ctr.Image }) {
				c.errorf("%s container %s: image %q has no entry in %s images, so it cannot be set in one place", w.what, ctr.Name, ctr.Image, kustomizeFile)
			}
		}
	}
}

func (c *checker) services() {
	for _, s := range c.m.services {
		if len(s.Spec.Selector) == 0 {
			c.errorf("Service %s: no selector", s.Name)
			continue
		}
		sel := labels.SelectorFromSet(s.Spec.Selector)
		selected := 0
		for _, w := range c.m.workloads() {
			if !sel.Matches(labels.Set(w.pod.Labels)) {
				continue
			}
			selected++
			for _, p := range s.Spec.Ports {
				cp, ok := containerPort(w.pod.Spec, p.TargetPort, p.Port, p.Protocol)
				if !ok {
					c.errorf("Service %s port %s (%d/%s): target %s is no %s container port of %s", s.Name, p.Name, p.Port, p.Protocol, p.TargetPort.String(), p.Protocol, w.what)
				} else if s.Spec.ClusterIP == corev1.ClusterIPNone && cp.ContainerPort != p.Port {
					// A headless name resolves to pod IPs: clients dial
					// the Service port on the pod itself.
					c.errorf("Service %s port %s: headless, so port %d must equal the container port %d of %s", s.Name, p.Name, p.Port, cp.ContainerPort, w.what)
				}
			}
		}
		if selected == 0 {
			c.errorf("Service %s: selector %v matches no pod template", s.Name, s.Spec.Selector)
		}
	}
}

func (c *checker) statefulSets() {
	for _, s := range c.m.statefulSets {
		svc := named(c.m.services, s.Spec.ServiceName)
		switch {
		case svc == nil:
			c.errorf("StatefulSet %s: serviceName %q is no Service in the manifests", s.Name, s.Spec.ServiceName)
		case svc.Spec.ClusterIP != corev1.ClusterIPNone:
			c.errorf("StatefulSet %s: serviceName %s is not headless (clusterIP %q, want None)", s.Name, svc.Name, svc.Spec.ClusterIP)
		case !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(s.Spec.Template.Labels)):
			c.errorf("StatefulSet %s: its Service %s does not select its pods", s.Name, svc.Name)
		}
		if s.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
			c.errorf("StatefulSet %s: podManagementPolicy %q, want Parallel (executors do not wait for each other)", s.Name, s.Spec.PodManagementPolicy)
		}
		if s.Spec.Replicas == nil || *s.Spec.Replicas < 1 {
			c.errorf("StatefulSet %s: replicas not set", s.Name)
		}
	}
}

func (c *checker) deployments() {
	for _, d := range c.m.deployments {
		if role(d.Spec.Template.Spec) != "demo" {
			continue
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
			c.errorf("Deployment %s: a driver runs exactly one replica", d.Name)
		}
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			c.errorf("Deployment %s: strategy %q, want Recreate (never two drivers)", d.Name, d.Spec.Strategy.Type)
		}
	}
}

// named is the object in list called name, or nil.
func named[T interface{ GetName() string }](list []T, name string) T {
	for _, o := range list {
		if o.GetName() == name {
			return o
		}
	}
	var none T
	return none
}

func secretHas(s *corev1.Secret, key string) bool {
	_, a := s.Data[key]
	_, b := s.StringData[key]
	return a || b
}

func role(spec corev1.PodSpec) string {
	if len(spec.Containers) == 0 || len(spec.Containers[0].Args) == 0 {
		return ""
	}
	return spec.Containers[0].Args[0]
}

// containerPort finds the container port a Service or probe port means: by
// name, or by number when the target is a number (0 means "same as port").
func containerPort(spec corev1.PodSpec, target intstr.IntOrString, port int32, proto corev1.Protocol) (corev1.ContainerPort, bool) {
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	for _, ctr := range spec.Containers {
		for _, cp := range ctr.Ports {
			p := cp.Protocol
			if p == "" {
				p = corev1.ProtocolTCP
			}
			if p != proto {
				continue
			}
			switch {
			case target.Type == intstr.String && target.StrVal == cp.Name,
				target.Type == intstr.Int && target.IntVal == cp.ContainerPort,
				target.Type == intstr.Int && target.IntVal == 0 && port == cp.ContainerPort:
				return cp, true
			}
		}
	}
	return corev1.ContainerPort{}, false
}

func (c *checker) workload(w workload) {
	sel, err := metav1.LabelSelectorAsSelector(w.selector)
	switch {
	case err != nil:
		c.errorf("%s: selector: %v", w.what, err)
	case w.selector == nil || sel.Empty():
		c.errorf("%s: empty selector", w.what)
	case !sel.Matches(labels.Set(w.pod.Labels)):
		c.errorf("%s: selector %s does not match the pod labels %v", w.what, sel, w.pod.Labels)
	}
	spec := w.pod.Spec
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		switch {
		case v.Secret != nil:
			s := named(c.m.secrets, v.Secret.SecretName)
			if s == nil {
				c.errorf("%s volume %s: Secret %q is not in %s", w.what, v.Name, v.Secret.SecretName, examplesFile)
				continue
			}
			for _, it := range v.Secret.Items {
				if !secretHas(s, it.Key) {
					c.errorf("%s volume %s: Secret %s has no key %q", w.what, v.Name, s.Name, it.Key)
				}
			}
		case v.PersistentVolumeClaim != nil:
			if named(c.m.claims, v.PersistentVolumeClaim.ClaimName) == nil {
				c.errorf("%s volume %s: PersistentVolumeClaim %q is not in the manifests", w.what, v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
	}
	mounted := map[string]bool{}
	if sc := spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		// The image's USER is numeric, but saying it here keeps the
		// pod's files (fsGroup) and runAsNonRoot independent of the image.
		c.errorf("%s: pod securityContext.runAsUser must be a non-zero user", w.what)
	}
	for _, ctr := range spec.Containers {
		where := fmt.Sprintf("%s container %s", w.what, ctr.Name)
		for _, vm := range ctr.VolumeMounts {
			mounted[vm.Name] = true
			v, ok := volumes[vm.Name]
			if !ok {
				c.errorf("%s: volumeMount %s has no volume of that name", where, vm.Name)
				continue
			}
			if (v.Secret != nil || v.ConfigMap != nil) && !vm.ReadOnly {
				c.errorf("%s: volumeMount %s of key material must be readOnly", where, vm.Name)
			}
		}
		c.container(where, ctr, volumes)
	}
	for name := range volumes {
		if !mounted[name] {
			c.errorf("%s: volume %s is mounted by no container", w.what, name)
		}
	}
}

func (c *checker) container(where string, ctr corev1.Container, volumes map[string]corev1.Volume) {
	sc := ctr.SecurityContext
	switch {
	case sc == nil:
		c.errorf("%s: no securityContext", where)
	default:
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			c.errorf("%s: securityContext.runAsNonRoot must be true", where)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			c.errorf("%s: securityContext.readOnlyRootFilesystem must be true", where)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			c.errorf("%s: securityContext.allowPrivilegeEscalation must be false", where)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			c.errorf("%s: securityContext.capabilities must drop ALL and add none", where)
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := ctr.Resources.Requests[r]; !ok {
			c.errorf("%s: no %s request", where, r)
		}
		if _, ok := ctr.Resources.Limits[r]; !ok {
			c.errorf("%s: no %s limit", where, r)
		}
	}

	env := map[string]corev1.EnvVar{}
	for _, e := range ctr.Env {
		env[e.Name] = e
		if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
			ref := e.ValueFrom.ConfigMapKeyRef
			cm := named(c.m.configMaps, ref.Name)
			if cm == nil {
				c.errorf("%s: env %s: ConfigMap %q is not in the manifests", where, e.Name, ref.Name)
			} else if _, ok := cm.Data[ref.Key]; !ok {
				c.errorf("%s: env %s: ConfigMap %s has no key %q", where, e.Name, cm.Name, ref.Key)
			}
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			if s := named(c.m.secrets, ref.Name); s == nil || !secretHas(s, ref.Key) {
				c.errorf("%s: env %s: Secret %q with key %q is not in %s", where, e.Name, ref.Name, ref.Key, examplesFile)
			}
		}
	}
	if e, ok := env["GOMEMLIMIT"]; ok {
		c.goMemLimit(where, e.Value, ctr.Resources.Limits)
	}

	for _, a := range ctr.Args {
		if strings.Contains(a, "0.0.0.0") || strings.Contains(a, "[::]") {
			c.errorf("%s: argument %q binds every interface; bind the pod IP", where, a)
		}
		// Kubernetes leaves an undefined $(VAR) as literal text: the
		// process would get a host named "$(POD_IP)".
		for _, ref := range varRef.FindAllStringSubmatch(a, -1) {
			if _, ok := env[ref[1]]; !ok {
				c.errorf("%s: argument %q uses $(%s), which the container's env does not define", where, a, ref[1])
			}
		}
	}
	if e, ok := env["POD_IP"]; ok && (e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "status.podIP") {
		c.errorf("%s: env POD_IP must come from the downward API (fieldRef status.podIP)", where)
	}

	if len(ctr.Args) == 0 {
		c.errorf("%s: no args: the image's entry point is the sluice CLI and needs a command", where)
		return
	}
	cmd, flags, err := parseArgs(ctr.Args)
	if err != nil {
		c.errorf("%s: %v", where, err)
		return
	}
	var join, cert, key string
	switch cmd {
	case "executor":
		join, cert, key = "join", "executor.pem", "executor-key.pem"
		c.dirFlag(where, flags, "work-dir", ctr, volumes, func(v corev1.Volume) bool { return v.EmptyDir != nil }, "an emptyDir")
		c.readiness(where, ctr, flags["flight"])
	case "demo":
		join, cert, key = "cluster-join", "driver.pem", "driver-key.pem"
		if flags["brokers"] == "" {
			c.errorf("%s: no --brokers: without it the demo starts an in-process Kafka executors cannot reach", where)
		}
	default:
		c.errorf("%s: command %q is neither executor nor demo", where, cmd)
		return
	}
	for _, f := range []string{"bind", "flight", "advertise", "gossip-key-file", "tls-ca", "tls-cert", "tls-key", "checkpoint", join} {
		if cmd == "executor" && f == "checkpoint" {
			continue // the driver tells executors where the checkpoint is
		}
		if flags[f] == "" {
			c.errorf("%s: no --%s", where, f)
		}
	}
	c.listen(where, ctr, flags["bind"], "bind", true)
	c.listen(where, ctr, flags["flight"], "flight", false)
	if a := flags["advertise"]; a != "" && (strings.Contains(a, ":") || a == "0.0.0.0") {
		c.errorf("%s: --advertise %q must be a host others dial (no port, no wildcard)", where, a)
	}
	c.seeds(where, join, flags[join])
	c.secretFile(where, ctr, volumes, flags, "gossip-key-file", "sluice-gossip-key", "gossip.key")
	c.secretFile(where, ctr, volumes, flags, "tls-ca", "sluice-tls", "ca.pem")
	c.secretFile(where, ctr, volumes, flags, "tls-cert", "sluice-tls", cert)
	c.secretFile(where, ctr, volumes, flags, "tls-key", "sluice-tls", key)
	c.checkpointMounts(where, ctr, volumes, flags)
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// parseArgs reads "cmd --a=x --b y" the way Go's flag package does (one or
// two dashes, value after = or as the next argument; every sluice flag the
// manifests use takes a value).
func parseArgs(args []string) (string, map[string]string, error) {
	cmd := args[0]
	if strings.HasPrefix(cmd, "-") {
		return "", nil, fmt.Errorf("first argument %q must be the sluice command", cmd)
	}
	flags := map[string]string{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return "", nil, fmt.Errorf("argument %q: not a flag (Go's flag package stops parsing there)", a)
		}
		name, val, ok := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !ok {
			if i+1 >= len(args) {
				return "", nil, fmt.Errorf("flag %q without a value", a)
			}
			i++
			val = args[i]
		}
		if _, dup := flags[name]; dup {
			return "", nil, fmt.Errorf("flag --%s given twice", name)
		}
		flags[name] = val
	}
	return cmd, flags, nil
}

// listen checks one listen address: a concrete host, and a port the
// container declares (gossip on TCP and UDP, Flight on TCP).
func (c *checker) listen(where string, ctr corev1.Container, addr, flag string, udpToo bool) {
	if addr == "" {
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		c.errorf("%s: --%s %q: %v", where, flag, addr, err)
		return
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		c.errorf("%s: --%s %q listens on every interface; bind $(POD_IP)", where, flag, addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		c.errorf("%s: --%s %q: port %q is not a number", where, flag, addr, port)
		return
	}
	protos := []corev1.Protocol{corev1.ProtocolTCP}
	if udpToo {
		protos = append(protos, corev1.ProtocolUDP)
	}
	for _, p := range protos {
		if _, ok := containerPort(corev1.PodSpec{Containers: []corev1.Container{ctr}}, intstr.FromInt32(int32(n)), 0, p); !ok {
			c.errorf("%s: --%s port %d is not a %s containerPort", where, flag, n, p)
		}
	}
}

// seeds checks that every gossip seed is the headless executor Service on
// its gossip port: memberlist resolves the name to every executor pod.
func (c *checker) seeds(where, flag, list string) {
	if list == "" {
		return
	}
	for _, seed := range strings.Split(list, ",") {
		host, port, err := net.SplitHostPort(seed)
		if err != nil {
			c.errorf("%s: --%s seed %q: %v", where, flag, seed, err)
			continue
		}
		name, _, _ := strings.Cut(host, ".") // sluice-executors or its FQDN
		svc := named(c.m.services, name)
		if svc == nil {
			c.errorf("%s: --%s seed %q: %s is no Service in the manifests", where, flag, seed, name)
			continue
		}
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			c.errorf("%s: --%s seed %q: Service %s is not headless, so its name is one virtual IP, not the executors", where, flag, seed, name)
		}
		if !svc.Spec.PublishNotReadyAddresses {
			c.errorf("%s: --%s seed %q: Service %s must publish not-ready addresses, or starting executors cannot find each other", where, flag, seed, name)
		}
		executors := false
		for _, s := range c.m.statefulSets {
			if s.Spec.ServiceName == name && role(s.Spec.Template.Spec) == "executor" {
				executors = true
			}
		}
		if !executors {
			c.errorf("%s: --%s seed %q: Service %s is not the executors' StatefulSet serviceName", where, flag, seed, name)
		}
		for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
				return strconv.Itoa(int(p.Port)) == port && (p.Protocol == proto || p.Protocol == "" && proto == corev1.ProtocolTCP)
			}) {
				c.errorf("%s: --%s seed %q: Service %s has no %s port %s", where, flag, seed, name, proto, port)
			}
		}
	}
}

// mountOf finds the mount a file path lies under, and the path inside it.
func mountOf(ctr corev1.Container, file string) (corev1.VolumeMount, string, bool) {
	file = path.Clean(file)
	var best corev1.VolumeMount
	var rel string
	found := false
	for _, vm := range ctr.VolumeMounts {
		mp := path.Clean(vm.MountPath)
		r, under := strings.CutPrefix(file, mp+"/")
		if file == mp {
			r, under = "", true
		}
		// The deepest mount wins, as in the container's filesystem.
		if under && (!found || len(mp) > len(path.Clean(best.MountPath))) {
			best, rel, found = vm, r, true
		}
	}
	return best, rel, found
}

// secretFile checks that a file flag names a file a Secret volume puts
// there, and that the file is the Secret key this role must use.
func (c *checker) secretFile(where string, ctr corev1.Container, volumes map[string]corev1.Volume, flags map[string]string, flag, secret, key string) {
	file := flags[flag]
	if file == "" {
		return
	}
	vm, rel, ok := mountOf(ctr, file)
	if !ok {
		c.errorf("%s: --%s %s is on no mounted volume", where, flag, file)
		return
	}
	v := volumes[vm.Name]
	if v.Secret == nil {
		c.errorf("%s: --%s %s is on volume %s, which is not a Secret", where, flag, file, vm.Name)
		return
	}
	got := rel // without items every key is a file of its own name
	if len(v.Secret.Items) > 0 {
		got = ""
		for _, it := range v.Secret.Items {
			if path.Clean(it.Path) == rel {
				got = it.Key
			}
		}
		if got == "" {
			c.errorf("%s: --%s %s: volume %s projects no file %q from Secret %s", where, flag, file, vm.Name, rel, v.Secret.SecretName)
			return
		}
	}
	if v.Secret.SecretName != secret || got != key {
		c.errorf("%s: --%s %s is key %q of Secret %s, want key %q of Secret %s", where, flag, file, got, v.Secret.SecretName, key, secret)
		return
	}
	if s := named(c.m.secrets, secret); s != nil && !secretHas(s, key) {
		c.errorf("%s: --%s: Secret %s has no key %q", where, flag, secret, key)
	}
}

// dirFlag checks that a directory flag lies on a writable volume of the
// wanted kind (the root filesystem is read-only).
func (c *checker) dirFlag(where string, flags map[string]string, flag string, ctr corev1.Container, volumes map[string]corev1.Volume, kind func(corev1.Volume) bool, kindName string) {
	dir := flags[flag]
	if dir == "" {
		c.errorf("%s: no --%s", where, flag)
		return
	}
	vm, _, ok := mountOf(ctr, dir)
	switch {
	case !ok:
		c.errorf("%s: --%s %s is on no mounted volume (the root filesystem is read-only)", where, flag, dir)
	case !kind(volumes[vm.Name]):
		c.errorf("%s: --%s %s is on volume %s, which is not %s", where, flag, dir, vm.Name, kindName)
	case vm.ReadOnly:
		c.errorf("%s: --%s %s is on read-only mount %s", where, flag, dir, vm.Name)
	}
}

// checkpointMounts checks that the driver's checkpoint is on a
// ReadWriteMany claim that every executor mounts at the same path, since
// executors load and write state under the path the driver gives them.
func (c *checker) checkpointMounts(where string, ctr corev1.Container, volumes map[string]corev1.Volume, flags map[string]string) {
	dir := flags["checkpoint"]
	if dir == "" {
		return
	}
	isClaim := func(v corev1.Volume) bool { return v.PersistentVolumeClaim != nil }
	c.dirFlag(where, flags, "checkpoint", ctr, volumes, isClaim, "a PersistentVolumeClaim")
	vm, _, ok := mountOf(ctr, dir)
	if !ok || !isClaim(volumes[vm.Name]) {
		return
	}
	claim := volumes[vm.Name].PersistentVolumeClaim.ClaimName
	if p := named(c.m.claims, claim); p != nil && !slices.Contains(p.Spec.AccessModes, corev1.ReadWriteMany) {
		c.errorf("%s: checkpoint claim %s is not ReadWriteMany: executors on other nodes cannot reach it", where, claim)
	}
	for _, s := range c.m.statefulSets {
		if role(s.Spec.Template.Spec) != "executor" {
			continue
		}
		found := false
		for _, ectr := range s.Spec.Template.Spec.Containers {
			for _, evm := range ectr.VolumeMounts {
				for _, ev := range s.Spec.Template.Spec.Volumes {
					if ev.Name == evm.Name && ev.PersistentVolumeClaim != nil && ev.PersistentVolumeClaim.ClaimName == claim && path.Clean(evm.MountPath) == path.Clean(vm.MountPath) && !evm.ReadOnly {
						found = true
					}
				}
			}
		}
		if !found {
			c.errorf("%s: --checkpoint %s: StatefulSet %s does not mount claim %s writable at %s", where, dir, s.Name, claim, vm.MountPath)
		}
	}
}

// readiness checks that an executor is ready when Flight accepts
// connections: a TCP probe on the --flight port.
func (c *checker) readiness(where string, ctr corev1.Container, flight string) {
	p := ctr.ReadinessProbe
	if p == nil || p.TCPSocket == nil {
		c.errorf("%s: no TCP readiness probe", where)
		return
	}
	cp, ok := containerPort(corev1.PodSpec{Containers: []corev1.Container{ctr}}, p.TCPSocket.Port, 0, corev1.ProtocolTCP)
	if !ok {
		c.errorf("%s: readiness probe port %s is no TCP container port", where, p.TCPSocket.Port.String())
		return
	}
	if _, port, err := net.SplitHostPort(flight); err == nil && strconv.Itoa(int(cp.ContainerPort)) != port {
		c.errorf("%s: readiness probe port %d is not the --flight port %s", where, cp.ContainerPort, port)
	}
}

// goMemLimit checks that the Go heap limit is below the container's memory
// limit: at or above it the kernel kills the process before the GC helps.
func (c *checker) goMemLimit(where, v string, limits corev1.ResourceList) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}, {"", 1}}
	for _, u := range units {
		num, ok := strings.CutSuffix(v, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			break
		}
		lim, ok := limits[corev1.ResourceMemory]
		if ok && n*u.mult >= lim.Value() {
			c.errorf("%s: GOMEMLIMIT %s is not below the memory limit %s", where, v, lim.String())
		}
		return
	}
	c.errorf("%s: GOMEMLIMIT %q is not a byte count (like 1800MiB)", where, v)
}

// checkDockerfile checks the lines that make the image work: a static
// build of ./cmd/sluice and a final stage without a libc or root.
func checkDockerfile(text string) error {
	var errs []error
	errorf := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// Join continuation lines, drop comments.
	var lines []string
	var cur strings.Builder
	for _, l := range strings.Split(text, "\n") {
		t := strings.TrimSpace(l)
		if cur.Len() == 0 && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(t, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(t)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	var froms []string
	var build, entry, user string
	finalCopy := false
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			froms = append(froms, strings.Fields(rest)[0])
			user = ""
			finalCopy = false
		case "RUN":
			if strings.Contains(rest, "go build") {
				build = rest
			}
		case "USER":
			user = strings.TrimSpace(rest)
		case "ENTRYPOINT":
			entry = strings.TrimSpace(rest)
		case "COPY":
			if strings.HasPrefix(rest, "--from=") && strings.HasSuffix(rest, " /sluice") {
				finalCopy = true
			}
		}
	}
	if len(froms) < 2 {
		errorf("Dockerfile: %d stages, want a builder and a final stage", len(froms))
		return errors.Join(errs...)
	}
	if !strings.HasPrefix(froms[0], "golang:1.26") {
		errorf("Dockerfile: builder stage FROM %s, want golang:1.26", froms[0])
	}
	fields := strings.Fields(build)
	switch {
	case build == "":
		errorf("Dockerfile: no RUN go build")
	case !slices.Contains(fields, "CGO_ENABLED=0"):
		errorf("Dockerfile: go build without CGO_ENABLED=0: the static final image has no libc")
	case !slices.Contains(fields, "./cmd/sluice"):
		errorf("Dockerfile: go build does not build ./cmd/sluice")
	case !strings.Contains(build, "-o /sluice"):
		errorf("Dockerfile: go build does not write /sluice")
	}
	final := froms[len(froms)-1]
	switch {
	case strings.HasPrefix(final, "gcr.io/distroless/static") && strings.HasSuffix(final, ":nonroot"):
	case final == "scratch":
		if user == "" || user == "root" || user == "0" || strings.HasPrefix(user, "0:") {
			errorf("Dockerfile: scratch final stage without a non-root USER")
		}
	default:
		errorf("Dockerfile: final stage FROM %s, want gcr.io/distroless/static*:nonroot or scratch", final)
	}
	if user != "" && (user == "root" || user == "0" || strings.HasPrefix(user, "0:") || strings.HasPrefix(user, "root:")) {
		errorf("Dockerfile: final stage runs as %s", user)
	}
	if !finalCopy {
		errorf("Dockerfile: final stage does not COPY --from the builder to /sluice")
	}
	if entry != `["/sluice"]` {
		errorf(`Dockerfile: ENTRYPOINT %s, want ["/sluice"]`, entry)
	}
	return errors.Join(errs...)
}

func load(t *testing.T, files map[string][]byte) *manifests {
	t.Helper()
	m, err := decode(files)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

func TestManifests(t *testing.T) {
	m := load(t, readDir(t, manifestDir))
	if err := check(m); err != nil {
		t.Fatalf("manifests disagree:\n%v", err)
	}
	// The objects the lead's docs and the sluice flags name.
	want := map[string]bool{
		"StatefulSet sluice-executor":             len(m.statefulSets) == 1 && m.statefulSets[0].Name == "sluice-executor",
		"Service sluice-executors":                len(m.services) == 1 && m.services[0].Name == "sluice-executors",
		"Deployment sluice-driver":                len(m.deployments) == 1 && m.deployments[0].Name == "sluice-driver",
		"PersistentVolumeClaim sluice-checkpoint": len(m.claims) == 1 && m.claims[0].Name == "sluice-checkpoint",
		"Secrets sluice-gossip-key, sluice-tls":   len(m.secrets) == 2 && m.secrets[0].Name == "sluice-gossip-key" && m.secrets[1].Name == "sluice-tls",
	}
	for what, ok := range want {
		if !ok {
			t.Fatalf("want exactly one %s", what)
		}
	}
	if role(m.statefulSets[0].Spec.Template.Spec) != "executor" || role(m.deployments[0].Spec.Template.Spec) != "demo" {
		t.Errorf("the StatefulSet must run executors and the Deployment the demo driver")
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkDockerfile(string(b)); err != nil {
		t.Fatal(err)
	}
}

func TestDockerfileCheckRejects(t *testing.T) {
	good, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"cgo on", "CGO_ENABLED=0 go build", "go build", "CGO_ENABLED=0"},
		{"another package", "./cmd/sluice", "./cmd/other", "./cmd/sluice"},
		{"a final image with a shell and root", "gcr.io/distroless/static-debian12:nonroot", "debian:12", "final stage FROM debian:12"},
		{"root user", "USER 65532:65532", "USER 0:0", "runs as 0:0"},
		{"shell-form entry point", `ENTRYPOINT ["/sluice"]`, "ENTRYPOINT /sluice", "ENTRYPOINT /sluice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := mustReplace(t, string(good), tc.old, tc.new)
			err := checkDockerfile(bad)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if strings.Count(s, old) != 1 {
		t.Fatalf("want exactly one %q in the file (did it change? update this case)", old)
	}
	return strings.Replace(s, old, new, 1)
}

// TestStrictDecodeRejects feeds whole documents with the mistakes a hand
// edit makes; each must fail decoding, naming the problem.
func TestStrictDecodeRejects(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"misspelt top-level spec field", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  replica: 1
`, `unknown field "replica"`},
		{"misspelt nested container field", `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: s}
spec:
  serviceName: x
  template:
    spec:
      containers:
        - name: c
          containerPorts: [{containerPort: 7947}]
`, `unknown field "containerPorts"`},
		{"wrong type", `
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  ports:
    - port: seventy
`, "port"},
		{"duplicate field", `
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
data: {a: "1"}
data: {b: "2"}
`, `key "data" already set`},
		{"a kind without checks", `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: i}
`, "not a kind this test knows"},
		{"a namespace", `
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: prod}
`, "namespace-less"},
		{"a real Secret among the manifests", `
apiVersion: v1
kind: Secret
metadata: {name: s}
`, "belongs in secrets.example.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(map[string][]byte{"bad.yaml": []byte(tc.doc)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestCheckRejects breaks the real manifests one way at a time; the
// checker must name each break. Text edits go through decoding, object
// edits reach what text edits cannot reach briefly.
func TestCheckRejects(t *testing.T) {
	good := readDir(t, manifestDir)
	sts := "executor-statefulset.yaml"
	drv := "driver-deployment.yaml"
	for _, tc := range []struct {
		name string
		file string // text edit of this file, or none
		old  string
		new  string
		edit func(m *manifests)
		want string
	}{
		{name: "selector does not match the pod labels", file: sts,
			old:  "  selector:\n    matchLabels:\n      app.kubernetes.io/name: sluice\n      app.kubernetes.io/component: executor\n",
			new:  "  selector:\n    matchLabels:\n      app.kubernetes.io/name: sluice\n      app.kubernetes.io/component: executors\n",
			want: "StatefulSet sluice-executor: selector app.kubernetes.io/component=executors,app.kubernetes.io/name=sluice does not match the pod labels"},
		{name: "serviceName is not the headless Service", file: sts,
			old: "serviceName: sluice-executors", new: "serviceName: sluice-executor",
			want: `serviceName "sluice-executor" is no Service`},
		{name: "Service is not headless", file: "executor-service.yaml",
			old: "clusterIP: None", new: "clusterIP: \"\"",
			want: "not headless"},
		{name: "Service does not publish not-ready pods", file: "executor-service.yaml",
			old: "publishNotReadyAddresses: true", new: "publishNotReadyAddresses: false",
			want: "must publish not-ready addresses"},
		{name: "a mount without a volume", file: sts,
			old: "            - name: spill\n              mountPath:", new: "            - name: spil\n              mountPath:",
			want: "volumeMount spil has no volume"},
		{name: "a Secret that is not among the examples", file: drv,
			old: "secretName: sluice-tls", new: "secretName: sluice-certs",
			want: `Secret "sluice-certs" is not in secrets.example.yaml`},
		{name: "a claim that is not among the manifests", file: sts,
			old: "claimName: sluice-checkpoint", new: "claimName: checkpoint",
			want: `PersistentVolumeClaim "checkpoint" is not in the manifests`},
		{name: "a ConfigMap key that does not exist", file: drv,
			old: "key: kafka.brokers", new: "key: brokers",
			want: `ConfigMap sluice-config has no key "brokers"`},
		{name: "binding every interface", file: sts,
			old: "--bind=$(POD_IP):7946", new: "--bind=0.0.0.0:7946",
			want: "binds every interface"},
		{name: "binding an empty host", file: drv,
			old: "--flight=$(POD_IP):7947", new: "--flight=:7947",
			want: "--flight \":7947\" listens on every interface"},
		{name: "an undefined variable in an argument", file: sts,
			old: "--advertise=$(POD_IP)", new: "--advertise=$(POD_ADDR)",
			want: "$(POD_ADDR), which the container's env does not define"},
		{name: "the driver joins something else", file: drv,
			old: "--cluster-join=sluice-executors:7946", new: "--cluster-join=sluice-executor-0:7946",
			want: "sluice-executor-0 is no Service"},
		{name: "the driver joins the flight port", file: drv,
			old: "--cluster-join=sluice-executors:7946", new: "--cluster-join=sluice-executors:7947",
			want: "has no UDP port 7947"},
		{name: "flight port not declared", file: sts,
			old: "--flight=$(POD_IP):7947", new: "--flight=$(POD_IP):7948",
			want: "--flight port 7948 is not a TCP containerPort"},
		{name: "gossip without UDP", file: sts,
			old: "            - name: gossip-udp\n              containerPort: 7946\n              protocol: UDP\n", new: "",
			want: "--bind port 7946 is not a UDP containerPort"},
		{name: "readiness on another port", file: sts,
			old: "              port: flight", new: "              port: gossip-tcp",
			want: "readiness probe port 7946 is not the --flight port 7947"},
		{name: "the executor uses the driver's certificate", file: sts,
			old: "--tls-cert=/etc/sluice/tls/executor.pem", new: "--tls-cert=/etc/sluice/tls/driver.pem",
			want: `projects no file "driver.pem"`},
		{name: "a key file outside any mount", file: drv,
			old: "--gossip-key-file=/etc/sluice/gossip/gossip.key", new: "--gossip-key-file=/gossip.key",
			want: "--gossip-key-file /gossip.key is on no mounted volume"},
		{name: "the checkpoint on the read-only root", file: drv,
			old: "--checkpoint=/checkpoint/orders", new: "--checkpoint=/var/orders",
			want: "--checkpoint /var/orders is on no mounted volume"},
		{name: "executors mount the checkpoint elsewhere", file: sts,
			old: "              mountPath: /checkpoint", new: "              mountPath: /state",
			want: "does not mount claim sluice-checkpoint writable at /checkpoint"},
		{name: "the checkpoint claim is ReadWriteOnce", file: "checkpoint-pvc.yaml",
			old: "- ReadWriteMany", new: "- ReadWriteOnce",
			want: "is not ReadWriteMany"},
		{name: "work dir on the read-only root", file: sts,
			old: "--work-dir=/var/lib/sluice/spill", new: "--work-dir=/var/lib/spill",
			want: "--work-dir /var/lib/spill is on no mounted volume"},
		{name: "a writable root filesystem", file: drv,
			old: "readOnlyRootFilesystem: true", new: "readOnlyRootFilesystem: false",
			want: "readOnlyRootFilesystem must be true"},
		{name: "two drivers at a time", file: drv,
			old: "type: Recreate", new: "type: RollingUpdate",
			want: "want Recreate"},
		{name: "GOMEMLIMIT above the memory limit", file: sts,
			old: "value: 1800MiB", new: "value: 3GiB",
			want: "GOMEMLIMIT 3GiB is not below the memory limit 2Gi"},
		{name: "the example Secrets applied by kustomize", file: kustomizeFile,
			old: "  - config.yaml\n", new: "  - config.yaml\n  - secrets.example.yaml\n",
			want: "would overwrite the real Secrets"},
		{name: "a manifest kustomize does not apply", file: kustomizeFile,
			old: "  - config.yaml\n", new: "",
			want: "want every manifest file"},
		{name: "a Secret key the volume projects but the Secret lacks",
			edit: func(m *manifests) { delete(m.secrets[1].StringData, "executor-key.pem") },
			want: `Secret sluice-tls has no key "executor-key.pem"`},
		{name: "no memory limit",
			edit: func(m *manifests) {
				delete(m.deployments[0].Spec.Template.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory)
			},
			want: "no memory limit"},
		{name: "the driver with two replicas",
			edit: func(m *manifests) { two := int32(2); m.deployments[0].Spec.Replicas = &two },
			want: "exactly one replica"},
		{name: "POD_IP not from the downward API",
			edit: func(m *manifests) {
				m.statefulSets[0].Spec.Template.Spec.Containers[0].Env[0] = corev1.EnvVar{Name: "POD_IP", Value: "10.0.0.1"}
			},
			want: "POD_IP must come from the downward API"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := maps.Clone(good)
			if tc.file != "" {
				files[tc.file] = []byte(mustReplace(t, string(good[tc.file]), tc.old, tc.new))
			}
			m := load(t, files)
			if tc.edit != nil {
				tc.edit(m)
			}
			err := check(m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant one containing %q", err, tc.want)
			}
		})
	}
}
