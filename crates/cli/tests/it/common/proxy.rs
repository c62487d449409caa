//! A TCP proxy on 127.0.0.1:0 in front of a server (PostgreSQL), which a test can cut (every
//! open connection dropped, new ones closed at once) and restore: the database "going away"
//! without stopping the shared server.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

#[derive(Clone)]
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    cut: Arc<AtomicBool>,
    /// Bumped on each cut; a connection from an earlier generation ends.
    generation: Arc<AtomicU64>,
}

impl Proxy {
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            cut: Arc::default(),
            generation: Arc::default(),
        };
        let p = proxy.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if p.cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                // The generation at accept: a cut while this connection is still being made
                // ends it too.
                let born = p.generation.load(Ordering::SeqCst);
                let (target, p) = (target.clone(), p.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut c, mut s) = (client, server);
                    let copy = tokio::io::copy_bidirectional(&mut c, &mut s);
                    let watch = async {
                        while p.generation.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! { _ = copy => {}, _ = watch => {} }
                });
            }
        });
        proxy
    }

    /// Drops every connection and refuses new ones until [`Proxy::restore`]; returns once the
    /// open connections have seen it (they look every 20 ms).
    pub async fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}
