//! `Sharded<T>`: one instance of a service per shard (Seastar's `sharded<T>`).

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use super::{ShardContext, ShardError, Shards};

/// A service with one instance per shard. The handle is `Send + Sync +
/// Clone`; each instance lives on its shard (it need not be `Send`) and is
/// reached with [`Sharded::local`] or [`Sharded::invoke_on`].
///
/// Lifecycle: [`Sharded::start`] builds the instances on every shard;
/// [`Sharded::stop`] runs the service's stop routine on every shard and
/// drops the instances. After that, calls fail with [`ShardError::NoService`].
pub struct Sharded<T: 'static> {
    id: u64,
    shards: Shards,
    _instance: PhantomData<fn() -> T>,
}

impl<T: 'static> Clone for Sharded<T> {
    fn clone(&self) -> Self {
        Sharded {
            id: self.id,
            shards: self.shards.clone(),
            _instance: PhantomData,
        }
    }
}

impl<T: 'static> std::fmt::Debug for Sharded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharded")
            .field("service", &std::any::type_name::<T>())
            .field("id", &self.id)
            .finish()
    }
}

fn downcast<T: 'static>(any: Rc<dyn Any>, shard: usize) -> Result<Rc<T>, ShardError> {
    any.downcast::<T>()
        .map_err(|_| ShardError::NoService(shard))
}

impl<T: 'static> Sharded<T> {
    /// Builds one instance per shard with `factory` (run on each shard, in
    /// parallel) and registers it there.
    pub async fn start<F>(shards: &Shards, factory: F) -> Result<Sharded<T>, ShardError>
    where
        F: Fn(&ShardContext) -> T + Send + Sync + 'static,
    {
        let id = shards.next_service_id();
        let factory = Arc::new(factory);
        shards
            .invoke_on_all(move |ctx| {
                let factory = factory.clone();
                async move {
                    let instance: Rc<dyn Any> = Rc::new(factory(&ctx));
                    ctx.insert_service(id, instance);
                }
            })
            .await?;
        Ok(Sharded {
            id,
            shards: shards.clone(),
            _instance: PhantomData,
        })
    }

    /// This shard's instance.
    pub fn local(&self, ctx: &ShardContext) -> Result<Rc<T>, ShardError> {
        let any = ctx
            .service(self.id)
            .ok_or(ShardError::NoService(ctx.id()))?;
        downcast(any, ctx.id())
    }

    /// Runs `f` with `shard`'s instance, on that shard.
    pub async fn invoke_on<R, F, Fut>(&self, shard: usize, f: F) -> Result<R, ShardError>
    where
        F: FnOnce(Rc<T>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let id = self.id;
        self.shards
            .invoke_on(shard, move |ctx| async move {
                let any = ctx.service(id).ok_or(ShardError::NoService(ctx.id()))?;
                let instance = downcast::<T>(any, ctx.id())?;
                Ok(f(instance).await)
            })
            .await?
    }

    /// Runs `f` with every shard's instance, concurrently; results in shard order.
    pub async fn invoke_on_all<R, F, Fut>(&self, f: F) -> Result<Vec<R>, ShardError>
    where
        F: Fn(Rc<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let id = self.id;
        let f = Arc::new(f);
        let results = self
            .shards
            .invoke_on_all(move |ctx| {
                let f = f.clone();
                async move {
                    let any = ctx.service(id).ok_or(ShardError::NoService(ctx.id()))?;
                    let instance = downcast::<T>(any, ctx.id())?;
                    Ok(f(instance).await)
                }
            })
            .await?;
        results.into_iter().collect()
    }

    /// Runs `stop` on every shard's instance, then drops the instances.
    pub async fn stop<F, Fut>(&self, stop: F) -> Result<(), ShardError>
    where
        F: Fn(Rc<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let id = self.id;
        let stop = Arc::new(stop);
        let results = self
            .shards
            .invoke_on_all(move |ctx| {
                let stop = stop.clone();
                async move {
                    let any = ctx
                        .remove_service(id)
                        .ok_or(ShardError::NoService(ctx.id()))?;
                    let instance = downcast::<T>(any, ctx.id())?;
                    stop(instance).await;
                    Ok(())
                }
            })
            .await?;
        results.into_iter().collect()
    }
}
