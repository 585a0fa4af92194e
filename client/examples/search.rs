//! Connects to a Fathom server, prints what it serves, and searches for the
//! nearest neighbours of a query of the index's dimension.
//!
//! ```sh
//! cargo run --release -- demo &   # or: fathom serve --index idx --listen 127.0.0.1:7700
//! FATHOM_ADDR=http://127.0.0.1:7700 cargo run -p fathom-client --example search
//! ```
//! `FATHOM_API_KEY` and `FATHOM_TLS_CA` are honoured as by every Fathom client.

use fathom_client::{Client, ClientOptions, Code, Error, SearchSettings};
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let addr = std::env::var("FATHOM_ADDR").unwrap_or_else(|_| "http://127.0.0.1:7700".into());
    let client = Client::connect(&addr, ClientOptions::default()).await?;
    let info = client.index_info().await?;
    println!("{addr}: {} vectors of dimension {} ({})", info.vector_count, info.dimension, info.metric);

    // A query: here the unit vector along the first axis.
    let mut query = vec![0.0f32; info.dimension as usize];
    query[0] = 1.0;
    // One call with its own deadline and a deeper rerank than the default.
    let settings = SearchSettings { rerank: Some(50), ..Default::default() };
    match client.with_timeout(Some(Duration::from_secs(2))).search(&query, 10, Some(settings)).await {
        Ok(r) => {
            for n in &r.neighbors {
                println!("id {:>10}  distance {:.4}", n.id, n.distance);
            }
            if let Some(c) = r.coverage.filter(|c| c.shards_answered < c.shards_total) {
                println!("partial answer: shards {:?} did not answer", c.missing_shards);
            }
        }
        Err(e) if e.code() == Some(Code::InvalidArgument) => eprintln!("the server refused the query: {e}"),
        Err(e) => return Err(e),
    }
    Ok(())
}
