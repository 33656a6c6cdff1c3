use http::Method;

use super::*;

const WEB: &str = "spiffe://mesh.local/ns/default/sa/web";
const BATCH: &str = "spiffe://mesh.local/ns/jobs/sa/batch";

fn policy(
    name: &str,
    action: AuthorizationAction,
    rules: Vec<AuthorizationRuleSpec>,
) -> AuthorizationPolicySpec {
    AuthorizationPolicySpec {
        name: name.to_owned(),
        action,
        rules,
    }
}

fn rule(from: &[&str], to: Vec<AuthorizationOperationSpec>) -> AuthorizationRuleSpec {
    AuthorizationRuleSpec {
        from: from.iter().map(|s| s.to_string()).collect(),
        to,
    }
}

fn op(paths: &[&str], methods: &[&str]) -> AuthorizationOperationSpec {
    AuthorizationOperationSpec {
        paths: paths.iter().map(|s| s.to_string()).collect(),
        methods: methods.iter().map(|s| s.to_string()).collect(),
    }
}

fn compile(policies: Vec<AuthorizationPolicySpec>) -> Authorizer {
    Authorizer::compile(&policies)
        .expect("valid policies")
        .expect("some policies")
}

fn http<'a>(method: &'a Method, path: &'a str) -> Operation<'a> {
    Operation::Http { method, path }
}

#[test]
fn no_policies_compile_to_nothing() {
    assert!(Authorizer::compile(&[]).unwrap().is_none());
}

#[test]
fn an_allow_policy_admits_its_identity_path_and_method_and_denies_the_rest() {
    let authz = compile(vec![policy(
        "default/orders-from-web",
        AuthorizationAction::Allow,
        vec![rule(&[WEB], vec![op(&["/api/*"], &["GET", "POST"])])],
    )]);
    let get = Method::GET;
    let delete = Method::DELETE;
    assert_eq!(
        authz.decide(Some(WEB), http(&get, "/api/orders")),
        Decision::Allow
    );
    assert_eq!(
        authz.decide(Some(WEB), http(&delete, "/api/orders")),
        Decision::NotAllowed
    );
    assert_eq!(
        authz.decide(Some(WEB), http(&get, "/admin")),
        Decision::NotAllowed
    );
    assert_eq!(
        authz.decide(Some(BATCH), http(&get, "/api/orders")),
        Decision::NotAllowed
    );
    // No mesh certificate: only rules without `from` could match.
    assert_eq!(
        authz.decide(None, http(&get, "/api/orders")),
        Decision::NotAllowed
    );
}

#[test]
fn deny_wins_over_allow_and_names_the_policy() {
    let authz = compile(vec![
        policy(
            "default/everyone",
            AuthorizationAction::Allow,
            vec![rule(&[], vec![])],
        ),
        policy(
            "default/no-admin",
            AuthorizationAction::Deny,
            vec![rule(&[], vec![op(&["/admin*"], &[])])],
        ),
    ]);
    let get = Method::GET;
    assert_eq!(authz.decide(None, http(&get, "/orders")), Decision::Allow);
    let denied = authz.decide(Some(WEB), http(&get, "/admin/users"));
    assert_eq!(denied, Decision::DeniedByPolicy("default/no-admin".into()));
    assert_eq!(denied.policy(), "default/no-admin");
    assert_eq!(Decision::NotAllowed.policy(), "");
}

#[test]
fn only_deny_policies_allow_what_they_do_not_match() {
    let authz = compile(vec![policy(
        "default/no-batch",
        AuthorizationAction::Deny,
        vec![rule(&["spiffe://mesh.local/ns/jobs/*"], vec![])],
    )]);
    let post = Method::POST;
    assert_eq!(authz.decide(Some(WEB), http(&post, "/x")), Decision::Allow);
    assert_eq!(authz.decide(None, http(&post, "/x")), Decision::Allow);
    assert!(matches!(
        authz.decide(Some(BATCH), http(&post, "/x")),
        Decision::DeniedByPolicy(_)
    ));
}

#[test]
fn an_allow_policy_without_rules_denies_everything() {
    let authz = compile(vec![policy(
        "default/deny-all",
        AuthorizationAction::Allow,
        vec![],
    )]);
    assert_eq!(
        authz.decide(Some(WEB), http(&Method::GET, "/")),
        Decision::NotAllowed
    );
    assert_eq!(
        authz.decide(Some(WEB), Operation::Tcp),
        Decision::NotAllowed
    );
}

#[test]
fn tcp_connections_are_decided_by_identity_and_fail_closed_on_operations() {
    let authz = compile(vec![
        policy(
            "default/web-any",
            AuthorizationAction::Allow,
            vec![rule(&[WEB], vec![])],
        ),
        policy(
            "default/batch-reads",
            AuthorizationAction::Allow,
            vec![rule(&[BATCH], vec![op(&[], &["GET"])])],
        ),
        policy(
            "default/no-web-admin",
            AuthorizationAction::Deny,
            vec![rule(
                &["spiffe://mesh.local/ns/default/sa/web-admin"],
                vec![op(&["/admin"], &[])],
            )],
        ),
    ]);
    assert_eq!(authz.decide(Some(WEB), Operation::Tcp), Decision::Allow);
    // An allow rule with operations cannot match a connection...
    assert_eq!(
        authz.decide(Some(BATCH), Operation::Tcp),
        Decision::NotAllowed
    );
    // ...and a deny rule with operations denies the whole connection.
    assert!(matches!(
        authz.decide(
            Some("spiffe://mesh.local/ns/default/sa/web-admin"),
            Operation::Tcp
        ),
        Decision::DeniedByPolicy(_)
    ));
    assert_eq!(authz.decide(None, Operation::Tcp), Decision::NotAllowed);
}

#[test]
fn identity_wildcards_match_by_prefix_only() {
    let authz = compile(vec![policy(
        "default/ns-default",
        AuthorizationAction::Allow,
        vec![rule(&["spiffe://mesh.local/ns/default/*"], vec![])],
    )]);
    assert_eq!(authz.decide(Some(WEB), Operation::Tcp), Decision::Allow);
    assert_eq!(
        authz.decide(Some("spiffe://mesh.local/ns/defaultx/sa/a"), Operation::Tcp),
        Decision::NotAllowed
    );
    assert_eq!(
        authz.decide(
            Some("spiffe://other.domain/ns/default/sa/web"),
            Operation::Tcp
        ),
        Decision::NotAllowed
    );
}

#[test]
fn paths_match_exactly_by_prefix_by_suffix_or_any() {
    let authz = compile(vec![policy(
        "default/p",
        AuthorizationAction::Allow,
        vec![rule(
            &[],
            vec![
                op(&["/exact", "/static/*", "*.png"], &[]),
                op(&["*"], &["PUT"]),
            ],
        )],
    )]);
    let get = Method::GET;
    for allowed in ["/exact", "/static/a.css", "/img/logo.png", "/exact?x=1"] {
        assert_eq!(
            authz.decide(None, http(&get, allowed)),
            Decision::Allow,
            "{allowed}"
        );
    }
    for denied in ["/exact/", "/exactly", "/static", "/logo.png.txt"] {
        assert_eq!(
            authz.decide(None, http(&get, denied)),
            Decision::NotAllowed,
            "{denied}"
        );
    }
    assert_eq!(
        authz.decide(None, http(&Method::PUT, "/anything")),
        Decision::Allow
    );
}

#[test]
fn paths_are_normalised_before_matching() {
    let authz = compile(vec![policy(
        "default/no-admin",
        AuthorizationAction::Deny,
        vec![rule(&[], vec![op(&["/admin", "/admin/*"], &[])])],
    )]);
    let get = Method::GET;
    for sneaky in [
        "/admin",
        "//admin",
        "/api/../admin",
        "/./admin/./x",
        "/%61dmin",
        "/%2e%2e/admin/",
        "/api/%2E%2E/admin",
    ] {
        assert!(
            matches!(
                authz.decide(None, http(&get, sneaky)),
                Decision::DeniedByPolicy(_)
            ),
            "{sneaky} should be denied"
        );
    }
    assert_eq!(
        authz.decide(None, http(&get, "/administer")),
        Decision::Allow
    );
}

#[test]
fn normalize_path_borrows_normal_paths_and_keeps_encoded_slashes() {
    assert!(matches!(
        normalize_path("/api/orders"),
        Cow::Borrowed("/api/orders")
    ));
    assert!(matches!(
        normalize_path("/api/orders?x=/.."),
        Cow::Borrowed("/api/orders")
    ));
    assert_eq!(normalize_path("/a/b/../../.."), "/");
    assert_eq!(normalize_path("/a/./b/"), "/a/b/");
    assert_eq!(normalize_path("/a/%2f/b"), "/a/%2F/b");
    assert_eq!(normalize_path("/caf%C3%A9"), "/caf%C3%A9");
    assert_eq!(normalize_path("/ünï/%7euser"), "/ünï/~user");
    assert_eq!(normalize_path("/trailing%"), "/trailing%");
}

#[test]
fn methods_are_compared_exactly() {
    let authz = compile(vec![policy(
        "default/reads",
        AuthorizationAction::Allow,
        vec![rule(&[], vec![op(&[], &["GET", "HEAD"])])],
    )]);
    assert_eq!(
        authz.decide(None, http(&Method::HEAD, "/")),
        Decision::Allow
    );
    assert_eq!(
        authz.decide(None, http(&Method::POST, "/")),
        Decision::NotAllowed
    );
}

#[test]
fn bad_patterns_are_refused_with_their_field() {
    let bad = |rules| {
        Authorizer::compile(&[policy("default/p", AuthorizationAction::Allow, rules)])
            .expect_err("refused")
            .to_string()
    };
    assert_eq!(
        bad(vec![rule(&["web"], vec![])]),
        "authorization[0].rules[0].from[0]: expected a SPIFFE id, got \"web\""
    );
    assert_eq!(
        bad(vec![rule(&["spiffe://mesh.local/*/sa/web"], vec![])]),
        "authorization[0].rules[0].from[0]: expected \"*\" only at the end"
    );
    assert_eq!(
        bad(vec![rule(&[], vec![op(&["/a/*/b"], &[])])]),
        "authorization[0].rules[0].to[0].paths[0]: expected at most one \"*\", at the start or the end, got \"/a/*/b\""
    );
    assert_eq!(
        bad(vec![rule(&[], vec![op(&["api/*"], &[])])]),
        "authorization[0].rules[0].to[0].paths[0]: expected a path starting with \"/\", got \"api/*\""
    );
    assert_eq!(
        bad(vec![rule(&[], vec![op(&[], &["GE T"])])]),
        "authorization[0].rules[0].to[0].methods[0]: not a method: \"GE T\""
    );
}
