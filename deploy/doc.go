// Package deploy holds no code: it is the home of the deployment files for
// sluice cluster mode, and of the test that keeps them honest.
//
//	Dockerfile                 static sluice binary (CGO_ENABLED=0) on distroless, non-root
//	Dockerfile.dockerignore    context filter for it (BuildKit)
//	kubernetes/                kustomization: executors (StatefulSet behind the headless
//	                           Service sluice-executors, the gossip seeds), the driver
//	                           (Deployment, one replica, Recreate), the checkpoint PVC
//	                           (ReadWriteMany), a ConfigMap; secrets.example.yaml shows the
//	                           Secrets sluice-gossip-key and sluice-tls, which are made by hand
//
// deploy_test.go decodes every YAML document under kubernetes/ strictly into the
// Kubernetes API types (an unknown or misspelt field fails) and checks that the
// objects agree with each other and with the sluice command line:
//
//  1. every selector matches its pod template; the StatefulSet's serviceName is a
//     headless Service that selects the executors and publishes not-ready addresses;
//  2. every volumeMount has a volume, every volume is mounted, and every Secret,
//     ConfigMap and PersistentVolumeClaim referenced exists (Secrets in
//     secrets.example.yaml), with the keys referenced;
//  3. nothing binds 0.0.0.0 or an empty host; --bind and --flight ports are container
//     ports (gossip on TCP and UDP), and the readiness probe and Service target them;
//  4. --join and --cluster-join name the headless Service on its gossip port;
//  5. the key and certificate flags point into mounted Secrets, each role at its own
//     key pair; the checkpoint is on the shared claim, mounted at the same path in
//     every pod; the executor's work dir is an emptyDir;
//  6. every container runs non-root on a read-only root with no capabilities and has
//     resource requests and limits; the driver runs one replica with Recreate;
//  7. the Dockerfile builds ./cmd/sluice with CGO_ENABLED=0 into a static final image.
package deploy
