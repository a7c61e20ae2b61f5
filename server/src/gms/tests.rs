//! Three gossipers on 127.0.0.93..95 in one executor, over real sockets.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::*;
use crate::net::{MessagingConfig, MessagingService};
use crate::shard::Latch;

fn run<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

fn ip(i: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, i])
}

const INTERVAL: Duration = Duration::from_millis(200);

struct Node {
    ms: Rc<MessagingService>,
    g: Rc<Gossiper>,
    stop: Latch,
}

impl Node {
    fn start(i: u8, port: u16, generation: i32) -> Node {
        let ms = MessagingService::new(
            SocketAddr::new(ip(i), port),
            MessagingConfig {
                max_queue_per_peer: 256,
                connect_timeout: Duration::from_secs(1),
                max_frame: 1 << 20,
            },
        );
        let acceptor = ms.bind().unwrap();
        let config = GossipConfig {
            interval: INTERVAL,
            ..GossipConfig::default()
        };
        let g = Gossiper::with_config(
            ms.clone(),
            ip(i),
            vec![ip(93)],
            generation,
            vec![
                (ApplicationState::Dc, format!("dc{}", i % 2)),
                (ApplicationState::Rack, "rack1".into()),
                (ApplicationState::Status, "NORMAL,0".into()),
            ],
            config,
        );
        let stop = Latch::new();
        let s = stop.clone();
        crate::shard::spawn(async move { acceptor.serve(s.wait()).await }).detach();
        let (g2, s) = (g.clone(), stop.clone());
        crate::shard::spawn(async move { g2.run(s.wait()).await }).detach();
        Node { ms, g, stop }
    }

    /// Stops without telling anyone (like kill -9).
    async fn kill(self) {
        self.stop.trigger();
        self.ms.shutdown().await;
    }
}

async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        crate::shard::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

fn sees(n: &Node, other: u8, dc: &str) -> bool {
    n.g.is_alive(ip(other))
        && n.g
            .endpoint_state(ip(other))
            .is_some_and(|s| s.states.get(&ApplicationState::Dc).map(String::as_str) == Some(dc))
}

async fn converge(nodes: &[&Node], ids: &[u8]) {
    wait_for("convergence", Duration::from_secs(15), || {
        nodes.iter().all(|n| {
            ids.iter()
                .filter(|i| ip(**i) != n.g.local())
                .all(|i| sees(n, *i, &format!("dc{}", i % 2)))
        })
    })
    .await;
}

#[derive(Default)]
struct Recorder(RefCell<Vec<String>>);

impl EndpointStateSubscriber for Recorder {
    fn on_join(&self, ip: IpAddr) {
        self.0.borrow_mut().push(format!("join {ip}"));
    }
    fn on_change(&self, ip: IpAddr, state: ApplicationState, value: &str) {
        self.0
            .borrow_mut()
            .push(format!("change {ip} {state} {value}"));
    }
    fn on_alive(&self, ip: IpAddr) {
        self.0.borrow_mut().push(format!("alive {ip}"));
    }
    fn on_dead(&self, ip: IpAddr) {
        self.0.borrow_mut().push(format!("dead {ip}"));
    }
}

#[test]
fn three_nodes_converge_and_spread_changes() {
    run(|| async {
        let a = Node::start(93, 17101, 1);
        let rec = Rc::new(Recorder::default());
        a.g.subscribe(rec.clone());
        let b = Node::start(94, 17101, 1);
        let c = Node::start(95, 17101, 1);
        converge(&[&a, &b, &c], &[93, 94, 95]).await;
        assert_eq!(a.g.live_members(), vec![ip(94), ip(95)]);
        assert!(a.g.unreachable_members().is_empty());
        let states = b.g.endpoint_states();
        assert_eq!(states.len(), 3);
        assert!(states.iter().all(|(_, s)| s.alive));

        c.g.add_local_state(ApplicationState::SchemaVersion, "v2".into());
        wait_for("schema version to spread", Duration::from_secs(10), || {
            [&a, &b].iter().all(|n| {
                n.g.endpoint_state(ip(95)).is_some_and(|s| {
                    s.states
                        .get(&ApplicationState::SchemaVersion)
                        .map(String::as_str)
                        == Some("v2")
                })
            })
        })
        .await;
        let events = rec.0.borrow().clone();
        assert!(
            events.contains(&"join 127.0.0.95".to_string()),
            "{events:?}"
        );
        assert!(
            events.contains(&"alive 127.0.0.95".to_string()),
            "{events:?}"
        );
        assert!(
            events.contains(&"change 127.0.0.95 SCHEMA v2".to_string()),
            "{events:?}"
        );
        for n in [a, b, c] {
            n.g.shutdown().await;
            n.kill().await;
        }
    });
}

#[test]
fn killed_node_is_marked_down_and_restart_is_marked_up() {
    run(|| async {
        let a = Node::start(93, 17102, 1);
        let b = Node::start(94, 17102, 1);
        let c = Node::start(95, 17102, 1);
        converge(&[&a, &b, &c], &[93, 94, 95]).await;
        // Let the failure detector learn the heartbeat rate.
        crate::shard::sleep(INTERVAL * 10).await;
        c.kill().await;
        let took = wait_for(
            "the killed node to be marked down",
            Duration::from_secs(15),
            || !a.g.is_alive(ip(95)) && !b.g.is_alive(ip(95)),
        )
        .await;
        eprintln!("killed node convicted after {took:?} (gossip interval {INTERVAL:?})");
        assert_eq!(a.g.unreachable_members(), vec![ip(95)]);
        assert!(a.g.is_alive(ip(94)));

        let c = Node::start(95, 17102, 2);
        converge(&[&a, &b, &c], &[93, 94, 95]).await;
        assert_eq!(a.g.endpoint_state(ip(95)).unwrap().generation, 2);
        for n in [a, b, c] {
            n.g.shutdown().await;
            n.kill().await;
        }
    });
}

#[test]
fn graceful_shutdown_is_seen_at_once() {
    run(|| async {
        let a = Node::start(93, 17103, 1);
        let b = Node::start(94, 17103, 1);
        let c = Node::start(95, 17103, 1);
        converge(&[&a, &b, &c], &[93, 94, 95]).await;
        let start = Instant::now();
        c.g.shutdown().await;
        assert!(!a.g.is_alive(ip(95)) && !b.g.is_alive(ip(95)));
        assert!(start.elapsed() < Duration::from_secs(1));
        let status = a.g.endpoint_state(ip(95)).unwrap().states[&ApplicationState::Status].clone();
        assert_eq!(status, state::STATUS_SHUTDOWN);
        // Gossip keeps it down while its messaging still runs.
        crate::shard::sleep(INTERVAL * 5).await;
        assert!(!a.g.is_alive(ip(95)) && !b.g.is_alive(ip(95)));
        c.kill().await;
        // And up again after a restart.
        let c = Node::start(95, 17103, 2);
        converge(&[&a, &b, &c], &[93, 94, 95]).await;
        for n in [a, b, c] {
            n.g.shutdown().await;
            n.kill().await;
        }
    });
}

#[test]
fn a_dead_node_status_is_advertised_on_its_behalf() {
    run(|| async {
        let a = Node::start(93, 17104, 1);
        let b = Node::start(94, 17104, 1);
        let c = Node::start(95, 17104, 1);
        converge(&[&a, &b, &c], &[93, 94, 95]).await;
        // Refused for this node and for a live one.
        assert!(a.g.advertise_on_behalf(ip(93), "removed,x".into()).is_err());
        assert!(a.g.advertise_on_behalf(ip(94), "removed,x".into()).is_err());
        // A node that shut down cleanly (peers forced its heartbeat version to the
        // highest possible) is the hard case: only a new generation overrides it.
        c.g.shutdown().await;
        c.kill().await;
        for v in ["removing,id", "removed,id,123"] {
            a.g.advertise_on_behalf(ip(95), v.into()).unwrap();
            wait_for(
                "b to take the status a set for c",
                Duration::from_secs(10),
                || {
                    b.g.endpoint_state(ip(95)).is_some_and(|s| {
                        s.states.get(&ApplicationState::Status).map(String::as_str) == Some(v)
                    })
                },
            )
            .await;
        }
        assert!(!b.g.is_alive(ip(95)));
        assert_eq!(b.g.endpoint_state(ip(95)).unwrap().generation, 3);
        for n in [a, b] {
            n.g.shutdown().await;
            n.kill().await;
        }
    });
}
