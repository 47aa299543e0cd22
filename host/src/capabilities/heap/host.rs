//! `serverkit:module/heap`, on a view of the instance: the module's heaps, and the meter
//! their host memory is charged to.

use wasmtime::component::HasData;

use super::GuestHeaps;
use crate::contract::bindings::heap::{HeapError, HeapSpec, Host, UnitId};
use crate::meter::InstanceMeter;

/// What the heap interface reaches of an instance.
pub struct HeapView<'a> {
    /// The module's name, the prefix of its heaps' labels in the report.
    pub module: &'a str,
    /// The module's heaps.
    pub heaps: &'a GuestHeaps,
    /// Where their host memory is charged.
    pub meter: &'a InstanceMeter,
}

/// The heap interface, for `add_to_linker`.
pub struct Heaps;

impl HasData for Heaps {
    type Data<'a> = HeapView<'a>;
}

impl Host for HeapView<'_> {
    async fn create(&mut self, spec: HeapSpec) -> wasmtime::Result<Result<(), HeapError>> {
        Ok(self.heaps.create(self.module, spec, self.meter))
    }

    async fn alloc(&mut self, label: String) -> wasmtime::Result<Result<UnitId, HeapError>> {
        Ok(self.heaps.alloc(&label, self.meter))
    }

    async fn write(
        &mut self,
        label: String,
        unit: UnitId,
        offset: u32,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), HeapError>> {
        Ok(self.heaps.write(&label, unit, offset, &data))
    }

    async fn read(
        &mut self,
        label: String,
        unit: UnitId,
        offset: u32,
        len: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, HeapError>> {
        Ok(self.heaps.read(&label, unit, offset, len))
    }

    async fn retain(
        &mut self,
        label: String,
        unit: UnitId,
    ) -> wasmtime::Result<Result<(), HeapError>> {
        Ok(self.heaps.retain(&label, unit))
    }

    async fn release(
        &mut self,
        label: String,
        unit: UnitId,
    ) -> wasmtime::Result<Result<(), HeapError>> {
        Ok(self.heaps.release(&label, unit))
    }
}
