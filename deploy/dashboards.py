"""Grafana dashboards as code (grafana-foundation-sdk: Grafana's own typed
builders, so a panel or query that Grafana would not accept fails here, not
in front of an operator):

- ``zhzx-platform``: one platform's health (its namespace): calls and 5xx by
  service, latency p99, outbox backlog and oldest event, dead letters, the
  lease holders, notifications, the provincial link;
- ``zhzx-network``: every linked platform side by side: each county's linked
  lag, link backlog and last linked event, and the province link.

    python -m deploy.dashboards            # write k8s/monitoring/dashboards/*.json
    python -m deploy.dashboards --check    # fail when the committed files differ

``python -m deploy.k8s`` ships them as ConfigMaps for Grafana's sidecar.
"""
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from services import docgen

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "k8s" / "monitoring" / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
NS = 'namespace=~"$namespace"'


def query(expr, legend):
    return prometheus.Dataquery().expr(expr).legend_format(legend).datasource(DATASOURCE)


def series(title, unit, *targets, width=12):
    panel = timeseries.Panel().title(title).unit(unit).height(8).span(width) \
        .datasource(DATASOURCE)
    for expr, legend in targets:
        panel = panel.with_target(query(expr, legend))
    return panel


def single(title, unit, expr, width=6):
    return stat.Panel().title(title).unit(unit).height(4).span(width).datasource(DATASOURCE) \
        .with_target(query(expr, "")).reduce_options(
            common.ReduceDataOptions().calcs(["lastNotNull"]))


def variables(board, multi):
    board = board.with_variable(
        dashboard.DatasourceVariable("datasource").label("数据源").type("prometheus"))
    return board.with_variable(
        dashboard.QueryVariable("namespace").label("平台").datasource(DATASOURCE)
        .query('label_values(zhzx_entrypoint_calls_total, namespace)')
        .multi(multi).include_all(multi))


def platform():
    board = dashboard.Dashboard("智慧政协 · 平台运行").uid("zhzx-platform") \
        .tags(["zhzx"]).refresh("1m").time("now-6h", "now").editable()
    board = variables(board, multi=False)
    return board \
        .with_row(dashboard.Row("概况")) \
        .with_panel(single("5xx 比例（5 分钟）", "percentunit",
                           f'sum(rate(zhzx_entrypoint_calls_total{{{NS}, outcome="error"}}[5m]))'
                           f' / sum(rate(zhzx_entrypoint_calls_total{{{NS}}}[5m]))')) \
        .with_panel(single("发件箱最旧事件", "s",
                           f"max(zhzx_outbox_oldest_seconds{{{NS}}})")) \
        .with_panel(single("死信", "short", f"max(zhzx_dead_letter_depth{{{NS}}})")) \
        .with_panel(single("逾期未办提案", "short", f"max(zhzx_proposals_overdue{{{NS}}})")) \
        .with_row(dashboard.Row("接口")) \
        .with_panel(series("调用（按服务与结果）", "reqps", (
            f"sum by (service, outcome) (rate(zhzx_entrypoint_calls_total{{{NS}}}[5m]))",
            "{{service}} {{outcome}}"))) \
        .with_panel(series("延迟 p99（按服务）", "s", (
            f"histogram_quantile(0.99, sum by (service, le) "
            f"(rate(zhzx_entrypoint_latency_seconds_bucket{{{NS}}}[5m])))", "{{service}}"))) \
        .with_row(dashboard.Row("事件")) \
        .with_panel(series("发布与处理", "ops", (
            f"sum by (service) (rate(zhzx_events_published_total{{{NS}}}[5m]))",
            "发布 {{service}}"), (
            f"sum by (service, outcome) (rate(zhzx_events_consumed_total{{{NS}}}[5m]))",
            "处理 {{service}} {{outcome}}"))) \
        .with_panel(series("发件箱积压", "short", (
            f"max by (service) (zhzx_outbox_backlog{{{NS}}})", "{{service}}"), (
            f"max by (service) (zhzx_link_backlog_events{{{NS}}})", "联动 {{service}}"))) \
        .with_panel(series("后台任务的持有者（租约）", "short", (
            f"sum by (service, duty, pod) (zhzx_lease_held{{{NS}}}) > 0",
            "{{service}} {{duty}} {{pod}}"))) \
        .with_panel(series("通知发送（按渠道与结果）", "ops", (
            f"sum by (channel, outcome) (rate(zhzx_notify_deliveries_total{{{NS}}}[5m]))",
            "{{channel}} {{outcome}}"))) \
        .with_row(dashboard.Row("省级平台")) \
        .with_panel(series("省级平台调用", "reqps", (
            f"sum by (endpoint, outcome) (rate(zhzx_province_requests_total{{{NS}}}[5m]))",
            "{{endpoint}} {{outcome}}"))) \
        .with_panel(series("报送积压与最久等待", "short", (
            f"max(zhzx_province_backlog{{{NS}}})", "积压"), (
            f"max(zhzx_province_oldest_pending_seconds{{{NS}}})", "最久等待（秒）"), (
            f"max(zhzx_province_breaker_open{{{NS}}})", "熔断器打开")))


def network():
    board = dashboard.Dashboard("智慧政协 · 三级联动网络").uid("zhzx-network") \
        .tags(["zhzx"]).refresh("1m").time("now-24h", "now").editable()
    board = variables(board, multi=True)
    return board \
        .with_row(dashboard.Row("各平台联动")) \
        .with_panel(series("联动事件延迟（接收方）", "s", (
            f"max by (namespace, exchange) (zhzx_link_lag_seconds{{{NS}}})",
            "{{namespace}} {{exchange}}"), width=24)) \
        .with_panel(series("联动事件积压（发送方）", "short", (
            f"sum by (namespace) (zhzx_link_backlog_events{{{NS}}})", "{{namespace}}"))) \
        .with_panel(series("无路由而等待的联动事件", "ops", (
            f"sum by (namespace, exchange) (rate(zhzx_link_blocked_total{{{NS}}}[5m]))",
            "{{namespace}} {{exchange}}"))) \
        .with_panel(series("距上次收到各平台的联动事件", "s", (
            f"time() - max by (namespace, origin) "
            f"(zhzx_link_last_received_timestamp_seconds{{{NS}}})",
            "{{namespace}} ← {{origin}}"))) \
        .with_panel(series("拒收的联动事件（按原因）", "ops", (
            f"sum by (namespace, reason) (rate(zhzx_linked_events_refused_total{{{NS}}}[5m]))",
            "{{namespace}} {{reason}}"))) \
        .with_row(dashboard.Row("省级平台链路")) \
        .with_panel(series("省级平台调用结果", "reqps", (
            f"sum by (namespace, outcome) (rate(zhzx_province_requests_total{{{NS}}}[5m]))",
            "{{namespace}} {{outcome}}"))) \
        .with_panel(series("熔断器与报送积压", "short", (
            f"max by (namespace) (zhzx_province_breaker_open{{{NS}}})", "熔断 {{namespace}}"), (
            f"max by (namespace) (zhzx_province_backlog{{{NS}}})", "积压 {{namespace}}")))


BOARDS = {"zhzx-platform.json": platform, "zhzx-network.json": network}


def render(board):
    return json.dumps(json.loads(JSONEncoder(sort_keys=True, indent=2).encode(board.build())),
                      ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def main(argv=None):
    return docgen.sync({OUT / name: render(make()) for name, make in BOARDS.items()}, argv,
                       __doc__.splitlines()[0], "python -m deploy.dashboards")


if __name__ == "__main__":
    sys.exit(main())
