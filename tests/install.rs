//! The install lines meshc writes: where the charts come from, how Solo's license reaches
//! istiod without entering the output, and what each Istio minor is given. Each test builds a
//! topology through the real binary and reads back the command lines and values a user would
//! run and review.

mod common;

use common::{Env, code, files_under, stderr};

/// A Solo ambient mesh of two peering primaries; `{istio}` is the mesh's `istio:` block.
fn solo(istio: &str) -> String {
    format!(
        "\
apiVersion: meshc/v1alpha1
kind: Topology
meshes:
  - name: solo
    dataplane: ambient
    istio:
{istio}
networks:
  - name: n1
  - name: n2
clusters:
  - name: c1
    network: n1
    controlPlane: primary
    eastWestGateway: {{ address: 203.0.113.10 }}
  - name: c2
    network: n2
    controlPlane: primary
    eastWestGateway: {{ address: 203.0.113.20 }}
"
    )
}

fn read(env: &Env, rel: &str) -> String {
    std::fs::read_to_string(env.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The command on a values file's first line.
fn header(env: &Env, rel: &str) -> String {
    let text = read(env, rel);
    let first = text.lines().next().unwrap_or_default();
    first
        .strip_prefix("# ")
        .unwrap_or_else(|| panic!("{rel}: no command line: {first}"))
        .to_string()
}

#[test]
fn a_solo_mesh_installs_every_chart_from_its_repository_at_its_version() {
    let env = Env::new(&solo(
        "      distribution: solo
      charts: { repository: oci://registry.example/solo/istio-helm, version: 1.30.3-solo }
      license: { secretRef: { name: solo-license, key: license.jwt } }",
    ));
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for chart in ["base", "cni", "istiod", "ztunnel"] {
        let line = header(&env, &format!("out/c1/install/helm/{chart}.values.yaml"));
        assert!(
            line.contains(&format!(
                "\"oci://registry.example/solo/istio-helm/{chart}\" -n \"istio-system\" --version \"1.30.3-solo\""
            )),
            "{line}"
        );
        assert!(!line.contains("istio/"), "{line}");
    }
    // The license reaches istiod from the Secret, on istiod's line only; the dot of the key
    // is escaped for kubectl's jsonpath.
    let istiod = header(&env, "out/c1/install/helm/istiod.values.yaml");
    assert!(
        istiod.ends_with(
            r#"--set-string license.value="$(kubectl get secret -n istio-system "solo-license" -o jsonpath="{.data.license\\.jwt}" | base64 -d)""#
        ),
        "{istiod}"
    );
    let ztunnel = header(&env, "out/c1/install/helm/ztunnel.values.yaml");
    assert!(!ztunnel.contains("license"), "{ztunnel}");
    let readme = read(&env, "out/c1/README.md");
    assert!(
        readme.contains("helm registry login registry.example"),
        "{readme}"
    );
    assert!(!readme.contains("helm repo add istio"), "{readme}");
    assert!(
        readme.contains("Secret `solo-license` in `istio-system`"),
        "{readme}"
    );
}

#[test]
fn a_license_file_is_passed_by_path_and_never_copied_into_the_output() {
    let env = Env::new(&solo(
        "      distribution: solo
      installers: [helm, istioctl]
      charts: { repository: oci://registry.example/istio, version: 1.30.3-solo }
      license: { file: secrets/solo-license.txt }",
    ));
    std::fs::create_dir_all(env.path("secrets")).expect("mkdir");
    let key = "eyJsaWNlbnNlIjoic2VjcmV0LWxpY2Vuc2Uta2V5In0";
    std::fs::write(env.path("secrets/solo-license.txt"), key).expect("license");
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Commands run from the cluster's directory, out/c1/.
    let istiod = header(&env, "out/c1/install/helm/istiod.values.yaml");
    assert!(
        istiod.ends_with(r#"--set-file license.value="../../secrets/solo-license.txt""#),
        "{istiod}"
    );
    let iop = header(&env, "out/c1/install/istioctl/controlplane.yaml");
    assert!(
        iop.ends_with(r#"--set values.license.value="$(cat "../../secrets/solo-license.txt")""#),
        "{iop}"
    );
    let readme = read(&env, "out/c1/README.md");
    assert!(
        readme.contains("Solo's istioctl for 1.30.3-solo"),
        "{readme}"
    );
    for file in files_under(&env.path("out")) {
        let text = std::fs::read(env.path("out").join(&file)).expect("read");
        assert!(
            !String::from_utf8_lossy(&text).contains(key),
            "{file} holds the license"
        );
    }
}

#[test]
fn a_missing_license_file_is_an_error_at_the_line_that_names_it() {
    let env = Env::new(&solo(
        "      distribution: solo
      charts: { repository: oci://registry.example/istio, version: 1.30.3-solo }
      license: { file: secrets/missing.txt }",
    ));
    let out = env.build();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("E075"), "{err}");
    assert!(err.contains("the license file cannot be read"), "{err}");
    assert!(err.contains("topology.yaml:9:"), "{err}");
    assert!(!env.path("out").exists(), "nothing is written");
}

#[test]
fn an_https_repository_is_named_with_repo_and_the_upstream_default_stays_istio() {
    let topology = |istio: &str| {
        format!(
            "\
apiVersion: meshc/v1alpha1
kind: Topology
meshes:
  - name: m
    istio:
{istio}
networks:
  - name: n1
clusters:
  - name: c1
    network: n1
    controlPlane: primary
"
        )
    };
    let env = Env::new(&topology(
        "      version: \"1.29\"
      charts: { repository: https://charts.example/istio }",
    ));
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line = header(&env, "out/c1/install/helm/istiod.values.yaml");
    assert!(
        line.contains(
            r#"istiod --repo "https://charts.example/istio" -n "istio-system" --version "~1.29.0""#
        ),
        "{line}"
    );
    let env = Env::new(&topology("      version: \"1.29\""));
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line = header(&env, "out/c1/install/helm/base.values.yaml");
    assert!(line.contains("istio/base -n"), "{line}");
    let readme = read(&env, "out/c1/README.md");
    assert!(
        readme.contains("helm repo add istio https://istio-release.storage.googleapis.com/charts"),
        "{readme}"
    );
}

/// A sidecar primary-remote pair on two networks at `version`.
fn primary_remote(version: &str) -> String {
    format!(
        "\
apiVersion: meshc/v1alpha1
kind: Topology
meshes:
  - name: m
    istio: {{ version: \"{version}\" }}
networks:
  - name: n1
  - name: n2
clusters:
  - name: c1
    network: n1
    controlPlane: primary
    eastWestGateway: {{ address: 203.0.113.10 }}
  - name: c2
    network: n2
    controlPlane: remote
    primary: c1
    eastWestGateway: {{ address: 203.0.113.20 }}
    apiServer: {{ url: \"https://10.0.0.2:6443\" }}
"
    )
}

fn values(env: &Env, rel: &str) -> serde_json::Value {
    serde_saphyr::from_str(&read(env, rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn reader_rbac_is_left_out_from_1_30_where_no_control_plane_reads_the_cluster() {
    for (version, primary) in [("1.29", None), ("1.30", Some(false)), ("1.31", Some(false))] {
        let env = Env::new(&primary_remote(version));
        let out = env.build();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        // c1 is read by nobody; c2 is read by c1's istiod through its remote secret.
        for chart in ["base", "istiod"] {
            let c1 = values(&env, &format!("out/c1/install/helm/{chart}.values.yaml"));
            assert_eq!(
                c1["global"]["enableReaderRBAC"].as_bool(),
                primary,
                "{version} c1 {chart}"
            );
            let c2 = values(&env, &format!("out/c2/install/helm/{chart}.values.yaml"));
            assert_eq!(c2["global"]["enableReaderRBAC"], serde_json::Value::Null);
        }
        assert!(env.path("out/c2/reader-token.yaml").exists());
    }
}

#[test]
fn a_network_gateway_lists_its_ports_only_where_the_chart_reads_them() {
    for (version, listed) in [("1.29", true), ("1.30", false)] {
        let env = Env::new(&primary_remote(version));
        let out = env.build();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let gw = values(&env, "out/c1/install/helm/eastwestgateway.values.yaml");
        assert_eq!(gw["networkGateway"], "n1");
        let ports: Vec<i64> = gw["service"]["ports"]
            .as_array()
            .map(|p| p.iter().filter_map(|p| p["port"].as_i64()).collect())
            .unwrap_or_default();
        if listed {
            assert_eq!(ports, [15021, 15443, 15012, 15017], "{version}");
        } else {
            assert!(ports.is_empty(), "{version}: {ports:?}");
        }
    }
}

#[test]
fn the_readme_names_the_gateway_api_bundle_of_the_istio_version() {
    let ambient = |version: &str| {
        format!(
            "\
apiVersion: meshc/v1alpha1
kind: Topology
meshes:
  - name: m
    dataplane: ambient
    istio: {{ version: \"{version}\" }}
networks:
  - name: n1
  - name: n2
clusters:
  - name: c1
    network: n1
    controlPlane: primary
    eastWestGateway: {{ address: 203.0.113.10 }}
    apiServer: {{ url: \"https://10.0.0.1:6443\" }}
  - name: c2
    network: n2
    controlPlane: primary
    eastWestGateway: {{ address: 203.0.113.20 }}
    apiServer: {{ url: \"https://10.0.0.2:6443\" }}
"
        )
    };
    for (version, bundle) in [("1.29", "v1.4.0"), ("1.30", "v1.5.1"), ("1.31", "v1.6.0")] {
        let env = Env::new(&ambient(version));
        let out = env.build();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let readme = read(&env, "out/c1/README.md");
        assert!(
            readme.contains(&format!(
                "gateway-api/releases/download/{bundle}/standard-install.yaml"
            )),
            "{version}: {readme}"
        );
        assert!(
            readme.contains(&format!("{bundle} is the bundle Istio {version} is")),
            "{readme}"
        );
    }
}

#[test]
fn exec_plugins_and_kubeconfig_files_replace_long_lived_tokens_and_remote_secrets() {
    let topology = "\
apiVersion: meshc/v1alpha1
kind: Topology
meshes:
  - name: m
    istio: { version: \"1.30\", installers: [helm, istioctl], kubeconfigSecret: istio-kubeconfigs }
networks:
  - name: n1
clusters:
  - name: c1
    network: n1
    controlPlane: primary
    apiServer: { url: \"https://10.0.0.1:6443\" }
    remoteSecret:
      exec:
        command: aws
        args: [eks, get-token, --cluster-name, c1]
        env: { AWS_REGION: eu-central-1 }
  - name: c2
    network: n1
    controlPlane: primary
    apiServer: { url: \"https://10.0.0.2:6443\" }
    remoteSecret: { tokenFile: c2.token }
";
    let env = Env::new(topology);
    std::fs::write(env.path("c2.token"), "c2-reader-token\n").expect("token");
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("W082"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the kubeconfig in istio-kubeconfigs/c1.yaml (on c2)"),
        "{}",
        stderr(&out)
    );
    // c2 watches c1 with the plugin: a kubeconfig file, no remote secret, no reader token on c1.
    assert!(!env.path("out/c2/remote-secrets.yaml").exists());
    assert!(!env.path("out/c1/reader-token.yaml").exists());
    assert!(env.path("out/c2/reader-token.yaml").exists());
    let secret = values(&env, "out/c2/remote-kubeconfigs.yaml");
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(secret["metadata"]["name"], "istio-kubeconfigs");
    assert_eq!(
        secret["metadata"]["labels"]["istio/multiCluster"],
        serde_json::Value::Null
    );
    let kubeconfig: serde_json::Value =
        serde_saphyr::from_str(secret["stringData"]["c1.yaml"].as_str().expect("c1.yaml"))
            .expect("kubeconfig");
    assert_eq!(kubeconfig["current-context"], "c1");
    let user = &kubeconfig["users"][0]["user"];
    assert_eq!(user["token"], serde_json::Value::Null);
    assert_eq!(
        user["exec"]["apiVersion"],
        "client.authentication.k8s.io/v1beta1"
    );
    assert_eq!(user["exec"]["command"], "aws");
    assert_eq!(user["exec"]["args"][1], "get-token");
    assert_eq!(user["exec"]["env"][0]["name"], "AWS_REGION");
    assert_eq!(user["exec"]["interactiveMode"], "Never");
    // c1 watches c2 with its token, as a file of the same kind of Secret.
    let c1_secret = values(&env, "out/c1/remote-kubeconfigs.yaml");
    assert!(
        c1_secret["stringData"]["c2.yaml"]
            .as_str()
            .is_some_and(|k| k.contains("c2-reader-token"))
    );
    // istiod mounts the Secret, reads the directory, and accepts the plugin where it needs it.
    let istiod = values(&env, "out/c2/install/helm/istiod.values.yaml");
    let dir = "/etc/istio/multicluster-kubeconfigs";
    assert_eq!(istiod["env"]["PILOT_MULTICLUSTER_KUBECONFIG_PATH"], dir);
    assert_eq!(
        istiod["env"]["PILOT_INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS"],
        "exec"
    );
    assert_eq!(
        istiod["volumes"][0]["secret"]["secretName"],
        "istio-kubeconfigs"
    );
    assert_eq!(istiod["volumeMounts"][0]["mountPath"], dir);
    let c1_istiod = values(&env, "out/c1/install/helm/istiod.values.yaml");
    assert_eq!(
        c1_istiod["env"]["PILOT_INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS"],
        serde_json::Value::Null
    );
    let iop = values(&env, "out/c2/install/istioctl/controlplane.yaml");
    assert_eq!(
        iop["spec"]["values"]["pilot"]["volumes"][0]["secret"]["secretName"],
        "istio-kubeconfigs"
    );
    // The Secret is applied before istiod, which mounts it.
    let readme = read(&env, "out/c2/README.md");
    assert!(
        readme.contains(
            "kubectl apply -f namespaces.yaml -f cacerts.yaml -f remote-kubeconfigs.yaml"
        ),
        "{readme}"
    );
    assert!(read(&env, "out/c1/README.md").contains("istio-reader-clusterrole-istio-system"));
}
