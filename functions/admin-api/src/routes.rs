//! Every route of the admin API, once: the router dispatches on it, and tests hold the
//! OpenAPI document and the template's API Gateway routes to it, so the three cannot drift.

use crate::auth::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    RegisterDevice,
    ListDevices,
    GetDevice,
    UpdateDevice,
    DecommissionDevice,
    IssueCertificate,
    RotateCertificate,
    RevokeCertificate,
    ListCertificates,
    IssueApiKey,
    QuarantineDevice,
    ReleaseDevice,
    QueryHistory,
    CreateAlertRule,
    ListAlertRules,
    DeleteAlertRule,
    ListAlerts,
    GetAlert,
    AcknowledgeAlert,
    ResolveAlert,
    CreateWebhook,
    ListWebhooks,
    DeleteWebhook,
    GetShadow,
    UpdateShadow,
    SendCommand,
    ListCommands,
    GetCommand,
    RegisterFirmware,
    ListFirmware,
    GetFirmware,
    StartRollout,
    ListRollouts,
    GetRollout,
    CancelRollout,
    GetLatestReading,
    FleetSummary,
    ListAudit,
}

#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub method: &'static str,
    /// The API Gateway route path, `{name}` for a path parameter.
    pub path: &'static str,
    /// The least role that may call it.
    pub role: Role,
    pub operation: Operation,
}

impl Route {
    /// The API Gateway route key, `"GET /v1/devices/{id}"`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Whether the route changes anything (and so is written to the audit log).
    pub fn is_change(&self) -> bool {
        self.method != "GET"
    }

    /// The path parameters if `method` and `path` are this route.
    pub fn matches(&self, method: &str, path: &str) -> Option<Vec<(String, String)>> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let path = path.strip_suffix('/').unwrap_or(path);
        let mut template = self.path.split('/');
        let mut actual = path.split('/');
        let mut params = Vec::new();
        loop {
            match (template.next(), actual.next()) {
                (None, None) => return Some(params),
                (Some(t), Some(a)) => {
                    if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                        if a.is_empty() {
                            return None;
                        }
                        params.push((name.to_owned(), a.to_owned()));
                    } else if t != a {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }
}

const fn route(
    method: &'static str,
    path: &'static str,
    role: Role,
    operation: Operation,
) -> Route {
    Route {
        method,
        path,
        role,
        operation,
    }
}

use Operation::*;
use Role::*;

/// Viewers read; operators manage devices, quarantine, shadows, commands and alerts;
/// admins hold credentials, firmware and rollouts.
pub const ROUTES: &[Route] = &[
    route("POST", "/v1/devices", Operator, RegisterDevice),
    route("GET", "/v1/devices", Viewer, ListDevices),
    route("GET", "/v1/devices/{id}", Viewer, GetDevice),
    route("PATCH", "/v1/devices/{id}", Operator, UpdateDevice),
    route("DELETE", "/v1/devices/{id}", Admin, DecommissionDevice),
    route(
        "GET",
        "/v1/devices/{id}/certificates",
        Viewer,
        ListCertificates,
    ),
    route(
        "POST",
        "/v1/devices/{id}/certificates",
        Admin,
        IssueCertificate,
    ),
    route(
        "POST",
        "/v1/devices/{id}/certificates/rotate",
        Admin,
        RotateCertificate,
    ),
    route(
        "DELETE",
        "/v1/devices/{id}/certificates/{certId}",
        Admin,
        RevokeCertificate,
    ),
    route("POST", "/v1/devices/{id}/api-keys", Admin, IssueApiKey),
    route(
        "PUT",
        "/v1/devices/{id}/quarantine",
        Operator,
        QuarantineDevice,
    ),
    route(
        "DELETE",
        "/v1/devices/{id}/quarantine",
        Operator,
        ReleaseDevice,
    ),
    route("GET", "/v1/devices/{id}/latest", Viewer, GetLatestReading),
    route("GET", "/v1/fleet/summary", Viewer, FleetSummary),
    route("GET", "/v1/devices/{id}/shadow", Viewer, GetShadow),
    route("PATCH", "/v1/devices/{id}/shadow", Operator, UpdateShadow),
    route("POST", "/v1/devices/{id}/commands", Operator, SendCommand),
    route("GET", "/v1/devices/{id}/commands", Viewer, ListCommands),
    route(
        "GET",
        "/v1/devices/{id}/commands/{commandId}",
        Viewer,
        GetCommand,
    ),
    route("POST", "/v1/firmware", Admin, RegisterFirmware),
    route("GET", "/v1/firmware", Viewer, ListFirmware),
    route("GET", "/v1/firmware/{version}", Viewer, GetFirmware),
    route("POST", "/v1/ota/rollout", Admin, StartRollout),
    route("GET", "/v1/ota/rollouts", Viewer, ListRollouts),
    route("GET", "/v1/ota/rollouts/{id}", Viewer, GetRollout),
    route("POST", "/v1/ota/rollouts/{id}/cancel", Admin, CancelRollout),
    route("GET", "/v1/query", Viewer, QueryHistory),
    route("POST", "/v1/alerts", Operator, CreateAlertRule),
    route("GET", "/v1/alerts", Viewer, ListAlerts),
    route("GET", "/v1/alerts/{id}", Viewer, GetAlert),
    route("POST", "/v1/alerts/{id}/ack", Operator, AcknowledgeAlert),
    route("POST", "/v1/alerts/{id}/resolve", Operator, ResolveAlert),
    route("GET", "/v1/rules", Viewer, ListAlertRules),
    route("DELETE", "/v1/rules/{id}", Operator, DeleteAlertRule),
    route("POST", "/v1/webhooks", Operator, CreateWebhook),
    // URLs can carry tokens: operators only.
    route("GET", "/v1/webhooks", Operator, ListWebhooks),
    route("DELETE", "/v1/webhooks/{id}", Operator, DeleteWebhook),
    route("GET", "/v1/audit", Admin, ListAudit),
];

/// The route with this API Gateway route key.
pub fn by_key(route_key: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.key() == route_key)
}

/// The route a raw method and path belong to, with its path parameters.
pub fn resolve(method: &str, path: &str) -> Option<(&'static Route, Vec<(String, String)>)> {
    ROUTES
        .iter()
        .find_map(|r| r.matches(method, path).map(|params| (r, params)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys_are_unique_and_resolve_to_themselves() {
        let mut keys: Vec<String> = ROUTES.iter().map(Route::key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), ROUTES.len());
        for route in ROUTES {
            let concrete = route
                .path
                .replace("{id}", "dev-1")
                .replace("{certId}", "abc")
                .replace("{commandId}", "c-1")
                .replace("{version}", "1.0.0");
            let (found, _) = resolve(route.method, &concrete).unwrap();
            assert_eq!(found.key(), route.key());
            assert_eq!(by_key(&route.key()).unwrap().operation, route.operation);
        }
    }

    #[test]
    fn path_parameters_are_named() {
        let (route, params) = resolve("DELETE", "/v1/devices/d-7/certificates/c0ffee").unwrap();
        assert_eq!(route.operation, RevokeCertificate);
        assert_eq!(
            params,
            vec![
                ("id".into(), "d-7".into()),
                ("certId".into(), "c0ffee".into())
            ]
        );
        assert!(resolve("GET", "/v1/devices//certificates").is_none());
        assert!(resolve("PUT", "/v1/devices").is_none());
        assert_eq!(
            resolve("POST", "/v1/devices/").unwrap().0.operation,
            RegisterDevice
        );
    }

    #[test]
    fn only_reads_are_open_to_viewers() {
        for route in ROUTES {
            // Webhook URLs can carry tokens, and the audit log names every actor: the
            // reads that are not a viewer's.
            let operators_only = matches!(route.operation, ListWebhooks | ListAudit);
            assert_eq!(
                route.role == Viewer,
                route.method == "GET" && !operators_only,
                "{}",
                route.key()
            );
            assert_eq!(route.is_change(), route.method != "GET");
        }
    }
}
